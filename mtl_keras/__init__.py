"""mtl_keras: multi-task sentence transformers on Keras 3 and keras-hub."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Without TensorFlow (a slim serving image) only exported models serve: the ONNX and
# OpenVINO folders, through `mtl_keras.runtime`, as `Predictor` and `SentenceEncoder`.
# Checked first, so that nothing half-imports (TFDS prints a banner when TF is missing).
FRAMEWORKS = {"tensorflow", "keras"}
try:
    import keras  # noqa: F401  (on the default backend, this imports TensorFlow)
    import tensorflow  # noqa: F401  (the data pipeline's, whatever the backend)
except ModuleNotFoundError as missing:
    if (missing.name or "").split(".")[0] not in FRAMEWORKS:
        raise
    from mtl_keras.errors import UserError
    from mtl_keras.runtime.predictor import ExportedEncoder as SentenceEncoder
    from mtl_keras.runtime.predictor import ExportedPredictor as Predictor

    __all__ = ["Predictor", "SentenceEncoder", "UserError"]
else:
    from mtl_keras.config import RunConfig
    from mtl_keras.encoding.encoder import SentenceEncoder, embedding_model
    from mtl_keras.encoding.pooling import MeanPooling
    from mtl_keras.errors import UserError
    from mtl_keras.evaluation.metrics import EntityF1, MacroF1
    from mtl_keras.model.backbone import TunableBertBackbone
    from mtl_keras.model.multitask import MultiTaskModel, compile_model
    from mtl_keras.predict import Predictor
    from mtl_keras.tasks import TASKS, Task, from_files
    from mtl_keras.tasks.kinds import KINDS
    from mtl_keras.training.layerwise_lr import LayerwiseLR, layer_decay_multipliers
    from mtl_keras.training.run import RunResult, train
    from mtl_keras.training.scenarios import SCENARIOS
    from mtl_keras.training.trainer import MultiTaskTrainer

    __all__ = [
        "KINDS", "SCENARIOS", "TASKS", "EntityF1", "LayerwiseLR", "MacroF1", "MeanPooling",
        "MultiTaskModel", "MultiTaskTrainer", "Predictor", "RunConfig", "RunResult",
        "SentenceEncoder", "Task", "TunableBertBackbone", "UserError", "compile_model",
        "embedding_model", "from_files", "layer_decay_multipliers", "train",
    ]  # fmt: skip
__version__ = "0.1.0"
