"""Task 2: one functional multi-task model over a keras-hub BERT backbone."""

import keras

from mtl_keras.backbone import TunableBertBackbone
from mtl_keras.errors import InputError
from mtl_keras.metrics import EntityF1, MacroF1
from mtl_keras.pooling import MeanPooling
from mtl_keras.preprocessing import FEATURES

EMBEDDING = "embedding"


def backbone_of(model):
    """The BERT backbone layer inside a model built by `build_model`."""
    return next(layer for layer in model.layers if isinstance(layer, TunableBertBackbone))


def build_model(backbone, tasks, dropout=0.1, backbone_inference=False, name="multitask"):
    """inputs -> BertBackbone -> masked mean -> {"embedding", <task>: logits, ...}.

    Sentence heads (dropout + dense) read the pooled embedding; token heads read the
    sequence output. Every head layer's name starts with its task name.

    Args:
        backbone: a `keras_hub.models.BertBackbone` (pretrained or tiny).
        tasks: `mtl_keras.tasks.Task` objects, one head each.
        dropout: dropout before each head's dense layer.
        backbone_inference: run the backbone without dropout even inside `fit`, as a
            frozen backbone should (see `TunableBertBackbone.inference_mode`).
    """
    backbone = TunableBertBackbone.from_backbone(backbone)
    backbone.inference_mode = backbone_inference
    inputs = {f: keras.Input(shape=(None,), dtype="int32", name=f) for f in FEATURES}
    sequence = backbone(inputs)["sequence_output"]
    embedding = MeanPooling(name=EMBEDDING)(sequence, inputs["padding_mask"])
    # Mean pooling replaces BERT's [CLS] pooler, which would get no gradient.
    backbone.get_layer("pooled_dense").trainable = False
    outputs = {EMBEDDING: embedding}
    for task in tasks:
        features = embedding if task.kind == "sentence" else sequence
        hidden = keras.layers.Dropout(dropout, name=f"{task.name}_dropout")(features)
        outputs[task.name] = keras.layers.Dense(task.num_classes, name=task.name)(hidden)
    return keras.Model(inputs, outputs, name=name)


def heads_model(model, tasks):
    """The sentence heads of `model` as a model of their own, fed with embeddings.

    The layers are shared, so training this trains `model`'s heads: what a frozen
    backbone needs once its embeddings are cached (`data.pipeline.embedding_cache`).
    """
    width = model.get_layer(EMBEDDING).output.shape[-1]
    embedding = keras.Input(shape=(width,), name=EMBEDDING)
    outputs = {}
    for task in tasks:
        hidden = model.get_layer(f"{task.name}_dropout")(embedding)
        outputs[task.name] = model.get_layer(task.name)(hidden)
    return keras.Model(embedding, outputs, name=f"{model.name}_heads")


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
    """Refuse loss weights for tasks the model has no head for."""
    names = [task.name for task in tasks]
    unknown = sorted(set(loss_weights) - set(names))
    if unknown:
        raise InputError(
            f"loss weights names {unknown[0]!r}, not one of the tasks: {', '.join(names)}."
        )


def compile_model(model, tasks, optimizer, loss_weights=None):
    """One sparse cross-entropy (from logits) and metric set per named task output."""
    loss_weights = loss_weights or {}
    check_loss_weights(loss_weights, tasks)
    model.compile(
        optimizer=optimizer,
        loss={t.name: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in tasks},
        loss_weights={t.name: float(loss_weights.get(t.name, 1.0)) for t in tasks},
        # Weighted: an example only counts for the heads it has a label for.
        weighted_metrics={t.name: task_metrics(t) for t in tasks},
        jit_compile=False,
    )
    return model
