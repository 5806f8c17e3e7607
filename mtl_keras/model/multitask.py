"""`MultiTaskModel`, one functional Keras model over a keras-hub BERT backbone."""

import keras

from mtl_keras.backends import build_before_first_step, trains_statelessly
from mtl_keras.encoding.pooling import make_pooling
from mtl_keras.encoding.preprocessing import FEATURES, NEGATIVE_FEATURES, PAIR_FEATURES
from mtl_keras.errors import InputError
from mtl_keras.model.backbone import TunableBertBackbone
from mtl_keras.model.bert_layers import POOLER
from mtl_keras.model.loss_weighting import TaskUncertainty, check_loss_weighting, weighted_losses
from mtl_keras.model.matryoshka import task_loss, task_metrics, task_output
from mtl_keras.model.negatives import FoldNegatives
from mtl_keras.runtime.predictor import EMBEDDING
from mtl_keras.tasks import Task
from mtl_keras.tasks.registry import negatives_per_example
from mtl_keras.training.layerwise_lr import LayerwiseLR


@keras.saving.register_keras_serializable(package="mtl_keras")
class MultiTaskModel(keras.Model):
    """BERT inputs -> backbone -> pooling -> one named output per task.

    Sentence heads (dropout + dense) read the pooled embedding; token heads read the
    sequence output; a pair task (sentence similarity) has no head: its output is the
    cosine of the embeddings of the text and of a second text (`pair_*` inputs, through
    the same backbone and pooling), so its loss trains the embedding itself; a contrastive
    task's hard negatives enter as `negative_*` inputs, k texts per example. The
    model's outputs are the task outputs only, so `fit` needs a target per task and
    nothing else; `embedding_model()` gives the pooled embedding and `heads_model()`
    the sentence heads on their own. Built like keras-hub's task models (layers,
    functional model, config), so a saved model knows its own tasks.

    Args:
        backbone: a `keras_hub.models.BertBackbone` (pretrained or tiny); a plain one is
            copied into a `TunableBertBackbone`, whose freezing, LoRA and inference mode
            survive save and reload.
        tasks: `mtl_keras.tasks.Task` objects (or their configs), one head each.
        dropout: dropout before each head's dense layer.
        pooling: how token vectors become the sentence embedding: "mean" (the
            default, as sentence-transformers), "cls", "max" or "attention" (learned).
        frozen_heads: names of tasks whose heads start frozen (recorded in the config,
            so a reloaded model trains what the saved one did).
        max_length: word pieces per text it was trained at (recorded in the config):
            `Predictor` and the exports default to it (`serving_length`).
        loss_weighting: "fixed" (each task's `loss_weight`) or "uncertainty" (learned
            per task, `loss_weighting.TaskUncertainty`; its weights are the model's).
    """

    def __init__(
        self, backbone, tasks, dropout=0.1, pooling="mean", frozen_heads=(), max_length=None,
        loss_weighting="fixed", **kwargs,
    ):  # fmt: skip
        # === Layers ===
        backbone = TunableBertBackbone.from_backbone(backbone)
        tasks = [Task.from_config(task) for task in tasks]
        check_task_names(tasks)
        check_loss_weighting(loss_weighting)
        headed = [t for t in tasks if t.spec.has_head]
        self.backbone = backbone
        self.pooling = make_pooling(pooling, name=EMBEDDING)
        self.head_dropouts = {
            t.name: keras.layers.Dropout(dropout, name=f"{t.name}_dropout") for t in headed
        }
        self.head_denses = {t.name: keras.layers.Dense(t.num_classes, name=t.name) for t in headed}

        # === Functional Model ===
        pairs = any(t.spec.second_text for t in tasks)
        negatives = negatives_per_example(tasks)
        names = FEATURES + (PAIR_FEATURES if pairs else ())
        inputs = {f: keras.Input(shape=(None,), dtype="int32", name=f) for f in names}
        inputs.update({f: keras.Input(shape=(negatives, None), dtype="int32", name=f)
                       for f in (NEGATIVE_FEATURES if negatives else ())})  # fmt: skip
        sequence = backbone({f: inputs[f] for f in FEATURES})["sequence_output"]
        embedding = self.pooling(sequence, inputs["padding_mask"])
        features = {"sequence": sequence, EMBEDDING: embedding}
        if pairs:  # the second text, through the same backbone and pooling
            second = dict(zip(FEATURES, (inputs[f] for f in PAIR_FEATURES), strict=True))
            pair_sequence = backbone(second)["sequence_output"]
            features["pair_embedding"] = self.pooling(pair_sequence, second["padding_mask"])
        if negatives:  # every example's hard negatives, as rows (batch * k, hidden)
            fold = FoldNegatives(name="fold_negatives")
            third = {f: fold(inputs[n]) for f, n in zip(FEATURES, NEGATIVE_FEATURES, strict=True)}
            negative_sequence = backbone(third)["sequence_output"]
            features["negative_embedding"] = self.pooling(negative_sequence, third["padding_mask"])
        outputs = {t.name: task_output(t, self._head(t.name), features) for t in tasks}
        # Functional's `trainable=True` would set every layer trainable again (on JAX),
        # undoing the backbone's recorded frozen layers: only a False is applied, below.
        trainable = kwargs.pop("trainable", True)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.tasks = tasks
        self.dropout = dropout
        self.pooling_mode = pooling
        self.max_length = max_length
        self.loss_weighting = loss_weighting
        self.task_uncertainty = (
            TaskUncertainty([t.name for t in tasks]) if loss_weighting == "uncertainty" else None
        )
        self._embedding = embedding  # a symbolic tensor: what `embedding_model` returns
        # Mean pooling replaces BERT's [CLS] pooler, which would get no gradient.
        backbone.get_layer(POOLER).trainable = False
        for name in frozen_heads:
            for layer in self.head_layers(name):
                layer.trainable = False
        if not trainable:
            self.trainable = False

    def _head(self, task_name):
        """The head of a task as one function (dropout, then dense); None without one."""
        if task_name not in self.head_denses:
            return None
        return lambda x: self.head_denses[task_name](self.head_dropouts[task_name](x))

    def head_layers(self, task_name):
        """The dropout and dense layer of one task's head."""
        if task_name not in self.head_denses:
            names = ", ".join(self.head_denses) or "none"
            raise InputError(f"this model has no head {task_name!r}; its heads: {names}.")
        return [self.head_dropouts[task_name], self.head_denses[task_name]]

    def frozen_heads(self):
        return [name for name, dense in self.head_denses.items() if not dense.trainable]

    @property
    def text_tasks(self):
        """The tasks with an output per text: all but those that read two texts (pair
        similarity and classification, contrastive; what they trained shows in the
        embedding)."""
        return [task for task in self.tasks if task.spec.has_head and not task.spec.second_text]

    @property
    def text_inputs(self):
        """The inputs of one text (without the second text of a pair task)."""
        return {f: self.input[f] for f in FEATURES}

    def embedding_model(self):
        """BERT inputs -> the pooled (not normalised) sentence embedding; shares weights."""
        return keras.Model(self.text_inputs, self._embedding, name=f"{self.name}_embedding")

    def inference_model(self):
        """BERT inputs -> {"embedding", <task>: logits}: one pass for serving and prediction.

        Per text, so only `text_tasks`; the embedding pair tasks trained is `embedding`.
        """
        heads = {t.name: self.output[t.name] for t in self.text_tasks}
        outputs = {EMBEDDING: self._embedding, **heads}
        return keras.Model(self.text_inputs, outputs, name=f"{self.name}_inference")

    def heads_model(self):
        """The sentence heads as a model of their own, fed with embeddings.

        The layers are shared, so training this trains this model's heads: what a frozen
        backbone needs once its embeddings are cached (`data.pipeline.embedding_cache`).
        """
        others = [t.name for t in self.tasks if not t.spec.embedding_head]
        if others:
            raise InputError(f"heads_model only holds sentence heads, not {others}.")
        embedding = keras.Input(shape=(self.backbone.hidden_dim,), name=EMBEDDING)
        outputs = {
            t.name: self.head_denses[t.name](self.head_dropouts[t.name](embedding))
            for t in self.tasks
        }
        heads = keras.Model(embedding, outputs, name=f"{self.name}_heads")
        heads.task_uncertainty = self.task_uncertainty  # trained with the heads
        return heads

    def serving_length(self, max_length=None):
        """Word pieces per text to predict and export at: `max_length` when given, else
        the training length, or (for a model saved before it was recorded) 128, within
        the encoder's positions."""
        if max_length is not None:
            return max_length
        return min(self.max_length or 128, self.backbone.max_sequence_length)

    def get_config(self):
        # Not chained to Functional's, which would rebuild a plain keras.Model.
        return {
            "backbone": keras.layers.serialize(self.backbone),
            "tasks": [task.get_config() for task in self.tasks],
            "dropout": self.dropout,
            "pooling": self.pooling_mode,
            "frozen_heads": self.frozen_heads(),
            "max_length": self.max_length,
            "loss_weighting": self.loss_weighting,
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
    if loss_weights and all(loss_weights.get(t.name, t.loss_weight) == 0 for t in tasks):
        raise InputError("every loss weight is 0: nothing would train; give one task > 0.")


def compile_model(model, optimizer, loss_weights=None, tasks=None, jit_compile=False):
    """One loss and metric set per named task output, as each task's kind says.

    Args:
        model: a `MultiTaskModel`, or a model with one output per task (`heads_model`).
        optimizer: a Keras optimizer or its name; one that is not a `LayerwiseLR` is
            wrapped in one with no multipliers, which makes Adam's step right for
            embedding tables on TensorFlow (`backends.summed_gradient`).
        loss_weights: {task name: weight}; a task left out weighs its `Task.loss_weight`.
            A model that learns its weights (`loss_weighting="uncertainty"`) takes none:
            each loss is wrapped in `UncertaintyWeighted` at weight 1.
        tasks: the tasks to compile for; default `model.tasks`.
        jit_compile: XLA on TensorFlow. Off: batches vary in length, and on CPU it
            measured slower even with lengths rounded to a few shapes (BENCHMARKS.md,
            "Fine-tuning epoch"). Always on for JAX, which otherwise runs op by op.
    """
    tasks = model.tasks if tasks is None else tasks
    loss_weights = loss_weights or {}
    check_loss_weights(loss_weights, tasks)
    uncertainty = getattr(model, "task_uncertainty", None)
    if uncertainty is not None:
        if loss_weights:
            raise InputError(
                "loss weights and uncertainty weighting: choose one (uncertainty weighting "
                "learns the weights)."
            )
        loss_weights = {t.name: 1.0 for t in tasks}
    optimizer = keras.optimizers.get(optimizer)
    if not isinstance(optimizer, LayerwiseLR):
        optimizer = LayerwiseLR(optimizer, {})  # sums embedding gradients' repeated rows
    if optimizer.built:
        optimizer.train(model.trainable_variables)
    model.compile(
        optimizer=optimizer,
        loss=weighted_losses({t.name: task_loss(t) for t in tasks}, uncertainty),
        loss_weights={t.name: float(loss_weights.get(t.name, t.loss_weight)) for t in tasks},
        # Weighted: an example only counts for the heads it has a label for.
        weighted_metrics={t.name: task_metrics(t) for t in tasks},
        jit_compile=jit_compile or trains_statelessly(),
    )
    build_before_first_step(model)
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
        if base in ("loss", "score"):  # the whole model's: kept as they are
            out[key] = value
            if base == "score":
                continue
        if not base.startswith(f"{name}_"):
            base = f"{name}_{base}"
        out[val + base] = value
    return out
