"""The multi-task model: a tunable keras-hub BERT backbone, pooling and one output per task."""
