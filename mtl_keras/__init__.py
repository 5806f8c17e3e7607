"""mtl_keras: multi-task sentence transformers on Keras 3 and keras-hub."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtl_keras.config import RunConfig  # noqa: E402
from mtl_keras.encoding.encoder import SentenceEncoder, embedding_model  # noqa: E402
from mtl_keras.encoding.pooling import MeanPooling  # noqa: E402
from mtl_keras.errors import UserError  # noqa: E402
from mtl_keras.evaluation.metrics import EntityF1, MacroF1  # noqa: E402
from mtl_keras.model.backbone import TunableBertBackbone  # noqa: E402
from mtl_keras.model.multitask import MultiTaskModel, compile_model  # noqa: E402
from mtl_keras.predict import Predictor  # noqa: E402
from mtl_keras.tasks import TASKS, Task, from_files  # noqa: E402
from mtl_keras.tasks.kinds import KINDS  # noqa: E402
from mtl_keras.training.layerwise_lr import LayerwiseLR, layer_decay_multipliers  # noqa: E402
from mtl_keras.training.run import RunResult, train  # noqa: E402
from mtl_keras.training.scenarios import SCENARIOS  # noqa: E402
from mtl_keras.training.trainer import MultiTaskTrainer  # noqa: E402

__all__ = [
    "KINDS",
    "SCENARIOS",
    "TASKS",
    "EntityF1",
    "LayerwiseLR",
    "MacroF1",
    "MeanPooling",
    "MultiTaskModel",
    "MultiTaskTrainer",
    "Predictor",
    "RunConfig",
    "RunResult",
    "SentenceEncoder",
    "Task",
    "TunableBertBackbone",
    "UserError",
    "compile_model",
    "embedding_model",
    "from_files",
    "layer_decay_multipliers",
    "train",
]
__version__ = "0.1.0"
