"""Data-parallel training over processes and machines (JAX, `keras.distribution`)."""
