"""On-demand benchmarks (`make bench`): results in benchmarks/results/, table in BENCHMARKS.md."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
