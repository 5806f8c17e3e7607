"""What a run sets up before training and checks after: devices, the cluster, a new model,
and the checks that stop a run which diverged."""

import contextlib
import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mtl_keras.distributed import cluster as distributed
from mtl_keras.encoding import presets
from mtl_keras.errors import InputError, TrainingDiverged
from mtl_keras.model.backbone import TunableBertBackbone
from mtl_keras.model.multitask import MultiTaskModel
from mtl_keras.saving import copy_weights_from


@dataclasses.dataclass
class RunData:
    train: tf.data.Dataset
    steps: int
    sizes: dict
    validation: tf.data.Dataset | None
    seconds: float  # reading, tokenizing (and with the cache, embedding)


@dataclasses.dataclass
class Fitted:
    history: list
    epoch_seconds: list
    stages: list  # one dict per stage: epochs, frozen parts, trainable parameters
    best_epoch: int | None = None  # early stopping restored this epoch's weights


def writes_files(config):
    """Whether this process writes the run's files: always, except under data parallelism,
    where process 0 alone does (the others train and evaluate alike)."""
    return config.distribution != "data_parallel" or distributed.cluster_from_env().is_chief


def preset_path(config):
    """The run's weights folder: `config.preset`, else the packaged all-MiniLM-L6-v2."""
    return Path(config.preset) if config.preset else presets.default_preset_dir()


def configure_devices(logical_cpus):
    """Split the CPU into logical devices, so MirroredStrategy has replicas to mirror."""
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus
            )
        except RuntimeError:  # TensorFlow fixes its devices once it has started
            if len(tf.config.list_logical_devices("CPU")) != logical_cpus:
                raise InputError(
                    "--logical-cpus can only be set before TensorFlow starts: "
                    "run it in a fresh process."
                ) from None


def start_distribution(config):
    """(cluster, strategy): the data-parallel cluster this process joined (None without
    one), and the `tf.distribute` strategy (MirroredStrategy, or TensorFlow's default)."""
    cluster = None
    if config.distribution == "data_parallel":
        cluster = distributed.start(config.cluster_timeout)
        if config.batch_size % cluster.num_processes:
            raise InputError(
                f"--batch-size {config.batch_size} must split evenly over the "
                f"{cluster.num_processes} processes (it is the global batch)."
            )
    configure_devices(config.logical_cpus)
    if config.distribution != "mirrored":
        return cluster, tf.distribute.get_strategy()
    if keras.backend.backend() != "tensorflow":
        raise InputError(
            "--distribution mirrored is TensorFlow's: unset KERAS_BACKEND, or use "
            "--distribution data_parallel on JAX."
        )
    return cluster, tf.distribute.MirroredStrategy()


def new_model(config, scenario, tasks, pretrained):
    """The multi-task model; the seed fixes the heads, so all scenarios start equal."""
    keras.utils.set_random_seed(config.seed)
    with dtype_policy(config.precision):  # every layer made here computes in it
        backbone = TunableBertBackbone.from_backbone(pretrained, dtype=config.precision)
        backbone.inference_mode = scenario.inference_backbone
        model = MultiTaskModel(backbone, tasks, config.dropout, config.pooling,
                               max_length=config.max_length,
                               loss_weighting=config.loss_weighting)  # fmt: skip
    if config.init_from:
        copied = copy_weights_from(model, config.init_from)
        print(f"initialised from {config.init_from}: {', '.join(copied)}")
    if scenario.lora:
        model.backbone.enable_lora(config.lora_rank)
    return model


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy set to `name` while the block runs, then put back: a
    model keeps the policy its layers were made under (and saves it), other models in
    the process are not affected."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def check_divergence(guard, history, checkpoint_dir):
    if guard.diverged_at:
        epoch, batch = guard.diverged_at
        kept = f"the last good epoch is in {checkpoint_dir}" if history else "no epoch finished"
        raise TrainingDiverged(
            f"training diverged (loss not finite) at epoch {epoch}, batch {batch}; {kept}; "
            "lower --learning-rate and rerun (a rerun resumes from that checkpoint)."
        )


def param_counts(model):
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return {"trainable": trainable, "total": total, "non_trainable": total - trainable}


def check_finite(model, metrics):
    """Refuse to call a run finished when a weight or a final metric is not finite."""
    broken = [v.path for v in model.weights if not np.isfinite(np.asarray(v)).all()]
    nan = [f"{split}/{task}/{name}" for split in ("validation", "test")
           for task, values in metrics[split].items()
           for name, value in values.items() if not np.isfinite(value)]  # fmt: skip
    if broken or nan:
        what = f"weight {broken[0]}" if broken else f"metric {nan[0]}"
        raise TrainingDiverged(
            f"training produced a non-finite {what}; nothing was saved: lower "
            "--learning-rate (or --head-lr-multiplier) and rerun."
        )
