"""mtl_keras: multi-task sentence transformers on Keras 3 and keras-hub."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtl_keras.encoder import SentenceEncoder, embedding_model  # noqa: E402
from mtl_keras.errors import UserError  # noqa: E402
from mtl_keras.pooling import MeanPooling  # noqa: E402

__all__ = ["MeanPooling", "SentenceEncoder", "UserError", "embedding_model"]
__version__ = "0.1.0"
