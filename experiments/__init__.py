"""Command-line entry points: `python -m experiments.<name>`."""

import os

# Before TensorFlow is imported by any entry point: quiet C++ logs, TF backend.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
