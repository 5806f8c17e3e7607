"""Measuring a model: Keras metrics per task, STS-B, a run's split metrics, and plots."""
