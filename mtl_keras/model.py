"""Task 2: `MultiTaskModel`, one functional Keras model over a keras-hub BERT backbone."""

import keras

from mtl_keras.backbone import TunableBertBackbone
from mtl_keras.bert_layers import POOLER
from mtl_keras.errors import InputError
from mtl_keras.metrics import EntityF1, MacroF1
from mtl_keras.pooling import MeanPooling
from mtl_keras.preprocessing import FEATURES
from mtl_keras.tasks import Task

EMBEDDING = "embedding"


@keras.saving.register_keras_serializable(package="mtl_keras")
class MultiTaskModel(keras.Model):
    """BERT inputs -> backbone -> masked mean -> one named logits output per task.

    Sentence heads (dropout + dense) read the pooled embedding; token heads read the
    sequence output. The model's outputs are the task logits only, so `fit` needs a
    target per task and nothing else; `embedding_model()` gives the pooled embedding
    and `heads_model()` the sentence heads on their own. Built like keras-hub's task
    models (layers, functional model, config), so a saved model knows its own tasks.

    Args:
        backbone: a `keras_hub.models.BertBackbone` (pretrained or tiny); a plain one is
            copied into a `TunableBertBackbone`, whose freezing, LoRA and inference mode
            survive save and reload.
        tasks: `mtl_keras.tasks.Task` objects (or their configs), one head each.
        dropout: dropout before each head's dense layer.
        frozen_heads: names of tasks whose heads start frozen (recorded in the config,
            so a reloaded model trains what the saved one did).
    """

    def __init__(self, backbone, tasks, dropout=0.1, frozen_heads=(), **kwargs):
        # === Layers ===
        backbone = TunableBertBackbone.from_backbone(backbone)
        tasks = [Task.from_config(task) for task in tasks]
        check_task_names(tasks)
        self.backbone = backbone
        self.pooling = MeanPooling(name=EMBEDDING)
        self.head_dropouts = {
            t.name: keras.layers.Dropout(dropout, name=f"{t.name}_dropout") for t in tasks
        }
        self.head_denses = {t.name: keras.layers.Dense(t.num_classes, name=t.name) for t in tasks}

        # === Functional Model ===
        inputs = {f: keras.Input(shape=(None,), dtype="int32", name=f) for f in FEATURES}
        sequence = backbone(inputs)["sequence_output"]
        embedding = self.pooling(sequence, inputs["padding_mask"])
        outputs = {}
        for task in tasks:
            features = embedding if task.kind == "sentence" else sequence
            outputs[task.name] = self.head_denses[task.name](
                self.head_dropouts[task.name](features)
            )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.tasks = tasks
        self.dropout = dropout
        self._embedding = embedding  # a symbolic tensor: what `embedding_model` returns
        # Mean pooling replaces BERT's [CLS] pooler, which would get no gradient.
        backbone.get_layer(POOLER).trainable = False
        for name in frozen_heads:
            for layer in self.head_layers(name):
                layer.trainable = False

    def head_layers(self, task_name):
        """The dropout and dense layer of one task's head."""
        if task_name not in self.head_denses:
            names = ", ".join(t.name for t in self.tasks)
            raise InputError(f"this model has no head {task_name!r}; its heads: {names}.")
        return [self.head_dropouts[task_name], self.head_denses[task_name]]

    def frozen_heads(self):
        return [t.name for t in self.tasks if not self.head_denses[t.name].trainable]

    def embedding_model(self):
        """BERT inputs -> the pooled (not normalised) sentence embedding; shares weights."""
        return keras.Model(self.input, self._embedding, name=f"{self.name}_embedding")

    def inference_model(self):
        """BERT inputs -> {"embedding", <task>: logits}: one pass for serving and prediction."""
        outputs = {EMBEDDING: self._embedding, **self.output}
        return keras.Model(self.input, outputs, name=f"{self.name}_inference")

    def heads_model(self):
        """The sentence heads as a model of their own, fed with embeddings.

        The layers are shared, so training this trains this model's heads: what a frozen
        backbone needs once its embeddings are cached (`data.pipeline.embedding_cache`).
        """
        token_tasks = [t.name for t in self.tasks if t.kind != "sentence"]
        if token_tasks:
            raise InputError(f"heads_model has no input for token heads: {token_tasks}.")
        embedding = keras.Input(shape=(self.backbone.hidden_dim,), name=EMBEDDING)
        outputs = {
            t.name: self.head_denses[t.name](self.head_dropouts[t.name](embedding))
            for t in self.tasks
        }
        return keras.Model(embedding, outputs, name=f"{self.name}_heads")

    def get_config(self):
        # Not chained to Functional's, which would rebuild a plain keras.Model.
        return {
            "backbone": keras.layers.serialize(self.backbone),
            "tasks": [task.get_config() for task in self.tasks],
            "dropout": self.dropout,
            "frozen_heads": self.frozen_heads(),
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def check_task_names(tasks):
    """Head names must be unique and must not collide with the embedding output."""
    names = [task.name for task in tasks]
    if not names:
        raise InputError("a multi-task model needs at least one task.")
    if len(set(names)) != len(names) or EMBEDDING in names:
        raise InputError(f"task names must be unique and not {EMBEDDING!r}, got {names}.")


def task_metrics(task):
    """Accuracy (per word for token heads), macro-F1 or entity F1, and cross-entropy.

    `xent` is the head's loss averaged over its own labelled examples (words for NER);
    the `<task>_loss` Keras logs is averaged over the whole mixed batch instead (so that
    every example counts the same in training), which makes it depend on the task mix.
    """
    common = [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent"),
    ]
    if task.kind == "token":
        return [*common, EntityF1(task.labels)]
    return [*common, MacroF1(task.num_classes)]


def check_loss_weights(loss_weights, tasks):
    """Refuse loss weights for unknown tasks, and weights that are negative or not finite."""
    names = [task.name for task in tasks]
    unknown = sorted(set(loss_weights) - set(names))
    if unknown:
        raise InputError(
            f"loss weights names {unknown[0]!r}, not one of the tasks: {', '.join(names)}."
        )
    for name, weight in loss_weights.items():
        if not weight >= 0 or weight == float("inf"):  # also false for NaN
            raise InputError(f"loss weight {name}={weight} must be a finite number >= 0.")
    if loss_weights and all(loss_weights.get(n, 1.0) == 0 for n in names):
        raise InputError("every loss weight is 0: nothing would train; give one task > 0.")


def compile_model(model, optimizer, loss_weights=None, tasks=None, jit_compile=False):
    """One sparse cross-entropy (from logits) and metric set per named task output.

    Args:
        model: a `MultiTaskModel`, or a model with one output per task (`heads_model`).
        tasks: the tasks to compile for; default `model.tasks`.
        jit_compile: XLA. Off: batches vary in length, and on CPU it measured slower
            even with lengths rounded to a few shapes (BENCHMARKS.md, "Fine-tuning epoch").
    """
    tasks = model.tasks if tasks is None else tasks
    loss_weights = loss_weights or {}
    check_loss_weights(loss_weights, tasks)
    model.compile(
        optimizer=optimizer,
        loss={t.name: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in tasks},
        loss_weights={t.name: float(loss_weights.get(t.name, 1.0)) for t in tasks},
        # Weighted: an example only counts for the heads it has a label for.
        weighted_metrics={t.name: task_metrics(t) for t in tasks},
        jit_compile=jit_compile,
    )
    return model


def per_task_logs(logs, task_names):
    """Keras logs with every task metric named `<task>_<metric>` (`val_` kept in front).

    Keras leaves the output name out of the logs of a one-output model (`accuracy`, not
    `topic_accuracy`); this puts it back, so a one-task run reads like any other.
    """
    if len(task_names) != 1:
        return dict(logs)
    name, out = task_names[0], {}
    for key, value in logs.items():
        val, base = ("val_", key[4:]) if key.startswith("val_") else ("", key)
        if base == "loss":
            out[key] = value
        if not base.startswith(f"{name}_"):
            base = f"{name}_{base}"
        out[val + base] = value
    return out
