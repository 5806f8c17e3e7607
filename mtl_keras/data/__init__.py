"""Real labelled data (TFDS builders over packaged files) and the multi-task input pipeline."""

from mtl_keras.data.builders import BUILDERS
from mtl_keras.data.loading import get_builder, load, resolve_data_dir

__all__ = ["BUILDERS", "get_builder", "load", "resolve_data_dir"]
