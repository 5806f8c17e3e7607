"""Task metrics: macro-F1 per sentence head, entity F1 for NER, correlation for pairs."""

import collections

import keras
import numpy as np
from keras import ops

from mtl_keras.backends import numpy_callback
from mtl_keras.runtime.decoding import entity_spans


@keras.saving.register_keras_serializable(package="mtl_keras")
class MacroF1(keras.metrics.F1Score):
    """Keras' `F1Score(average="macro")` fed with integer labels and logits.

    The stock metric wants one-hot targets and probabilities; our heads emit logits and
    our datasets carry class ids, so this converts and delegates.
    """

    def __init__(self, num_classes, name="macro_f1", **kwargs):
        kwargs.pop("average", None)
        super().__init__(average="macro", name=name, **kwargs)
        self.num_classes = num_classes

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.one_hot(ops.cast(ops.reshape(y_true, [-1]), "int32"), self.num_classes)
        probabilities = ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_classes)
        if sample_weight is not None:
            sample_weight = ops.reshape(sample_weight, [-1])
        super().update_state(y_true, probabilities, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.pop("average", None)
        return {**config, "num_classes": self.num_classes}


def entity_type_counts(y_true, y_pred, weight, names):
    """{entity type: [true positives, predicted, gold]} over weighted (word) positions."""
    counts = collections.defaultdict(lambda: np.zeros(3, np.float32))
    for true_row, pred_row, weight_row in zip(y_true, y_pred, weight, strict=True):
        keep = np.asarray(weight_row) > 0
        gold = entity_spans(np.asarray(true_row)[keep].tolist(), names)
        found = entity_spans(np.asarray(pred_row)[keep].tolist(), names)
        for span in gold | found:
            counts[span[2]] += [span in gold and span in found, span in found, span in gold]
    return counts


def entity_counts(y_true, y_pred, weight, names):
    """True positives, predicted and gold entity counts over weighted (word) positions."""
    return sum(entity_type_counts(y_true, y_pred, weight, names).values(), np.zeros(3, np.float32))


def entity_f1_by_type(y_true, y_pred, weight, names):
    """{entity type: F1} over weighted (word) positions, next to the micro F1 of EntityF1."""
    counts = entity_type_counts(y_true, y_pred, weight, names)
    types = sorted({name[2:] for name in names if name != "O"})
    return {t: 2 * float(counts[t][0]) / max(float(counts[t][1] + counts[t][2]), 1) for t in types}


@keras.saving.register_keras_serializable(package="mtl_keras")
class EntityF1(keras.metrics.Metric):
    """Entity-level F1 (exact span and type) over words, as in CoNLL/WNUT evaluation.

    Only positions with weight > 0 count: the first word piece of each word. Span
    decoding is sequential, so it runs as a numpy function inside the compiled step
    (`backends.numpy_callback`).
    """

    def __init__(self, tag_names, name="entity_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.tag_names = list(tag_names)
        self.counts = self.add_variable(shape=(3,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.argmax(y_pred, axis=-1)
        if sample_weight is None:
            sample_weight = ops.ones_like(y_true, dtype="float32")
        counts = numpy_callback(
            lambda t, p, w: entity_counts(t, p, w, self.tag_names),
            (
                ops.cast(y_true, "int32"),
                ops.cast(y_pred, "int32"),
                ops.cast(sample_weight, "float32"),
            ),
            (3,),
            "float32",
        )
        self.counts.assign_add(counts)

    def result(self):
        tp, predicted, gold = self.counts[0], self.counts[1], self.counts[2]
        return ops.divide_no_nan(2.0 * tp, predicted + gold)

    def reset_state(self):
        self.counts.assign(ops.zeros((3,)))

    def get_config(self):
        return {**super().get_config(), "tag_names": self.tag_names}


@keras.saving.register_keras_serializable(package="mtl_keras")
class Correlation(keras.metrics.Metric):
    """Pearson correlation of prediction and target over every weighted example seen.

    Keras' `PearsonCorrelation` averages one correlation per row and ignores sample
    weights; a pair task needs one correlation over all of its own examples (weight 0
    rows, from other tasks, do not count), accumulated batch by batch.
    """

    def __init__(self, name="pearson", **kwargs):
        super().__init__(name=name, **kwargs)
        # Weighted sums of 1, x, y, x^2, y^2 and xy: sums, so that the replicas of a
        # MirroredStrategy add up (Keras sums metric variables across them on read).
        # n * sum(x^2) - sum(x)^2 cancels when the cosines barely vary (a new encoder's
        # often sit within 0.01 of each other): in float32 that cost r 0.006 on 80 pairs,
        # so the sums are float64 where the backend has it (TensorFlow; JAX runs float32
        # unless x64 is enabled).
        self.sum_dtype = "float64" if keras.backend.backend() == "tensorflow" else "float32"
        self.sums = self.add_variable(
            shape=(6,), initializer="zeros", dtype=self.sum_dtype, name="sums"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        x = ops.cast(ops.reshape(y_pred, [-1]), self.sum_dtype)
        y = ops.cast(ops.reshape(y_true, [-1]), self.sum_dtype)
        w = ops.ones_like(x) if sample_weight is None else ops.reshape(sample_weight, [-1])
        w = ops.cast(w, self.sum_dtype)
        terms = [w, w * x, w * y, w * x * x, w * y * y, w * x * y]
        self.sums.assign_add(ops.stack([ops.sum(t) for t in terms]))

    def result(self):
        n, sx, sy, sxx, syy, sxy = (self.sums[i] for i in range(6))
        covariance = n * sxy - sx * sy
        variance = (n * sxx - sx * sx) * (n * syy - sy * sy)
        r = ops.divide_no_nan(covariance, ops.sqrt(ops.maximum(variance, 0.0)))
        return ops.cast(r, "float32")

    def reset_state(self):
        self.sums.assign(ops.zeros((6,), self.sum_dtype))


@keras.saving.register_keras_serializable(package="mtl_keras")
class LogitF1(keras.metrics.F1Score):
    """Keras' `F1Score` of multi-label logits at probability `threshold` (default 0.5).

    Multi-label heads output logits (their loss is `BinaryCrossentropy(from_logits=True)`);
    `F1Score` thresholds probabilities, so this applies the sigmoid first.
    """

    def __init__(self, average="micro", threshold=0.5, name=None, dtype=None):
        super().__init__(average, threshold, name or f"{average}_f1", dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(y_true, ops.sigmoid(y_pred), sample_weight)


def candidate_mask(y_true, y_pred):
    """(1, columns): 1 for the columns of `y_pred` that are this task's candidates.

    `y_true` (batch, 1 + k) is 1 for the examples of this task: column 0 for its
    positive, columns 1..k for its k hard negatives, which follow the batch's positives
    in `y_pred`, example by example. Other tasks' examples in a mixed batch are 0, so
    their texts are no negatives.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    positives = ops.reshape(y_true[:, :1], (1, -1))
    negatives = ops.reshape(y_true[:, 1:], (1, -1))  # example by example, as in `y_pred`
    return ops.concatenate([positives, negatives], axis=1)


@keras.saving.register_keras_serializable(package="mtl_keras")
def in_batch_xent(y_true, y_pred):
    """Cross-entropy of each anchor (row) against every positive of the batch and every
    hard negative (columns), its own positive being the answer: sentence-transformers'
    MultipleNegativesRankingLoss, with hard negatives when examples have them.

    `y_pred` is the (batch, batch + batch * k) matrix of scaled cosines; `y_true` says
    which columns are candidates (`candidate_mask`).
    """
    logits = y_pred + (1.0 - candidate_mask(y_true, y_pred)) * -1e9
    labels = ops.arange(ops.shape(y_pred)[0])
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


@keras.saving.register_keras_serializable(package="mtl_keras")
def in_batch_hits(y_true, y_pred):
    """1 where an anchor's own positive scores highest among all its candidates."""
    best = ops.argmax(y_pred + (1.0 - candidate_mask(y_true, y_pred)) * -1e9, axis=-1)
    return ops.cast(best == ops.arange(ops.shape(y_pred)[0]), "float32")


@keras.saving.register_keras_serializable(package="mtl_keras")
class InBatchNegativesLoss(keras.losses.Loss):
    """`in_batch_xent` as a Keras loss (per anchor; sample weights pick the task's rows)."""

    def call(self, y_true, y_pred):
        return in_batch_xent(y_true, y_pred)


def in_batch_metrics():
    """Top-1 accuracy and cross-entropy of anchors against their candidates."""
    return [keras.metrics.MeanMetricWrapper(in_batch_hits, name="accuracy"),
            keras.metrics.MeanMetricWrapper(in_batch_xent, name="xent")]  # fmt: skip


def retrieval_metrics(anchors, positives):
    """Recall@1 and MRR of each anchor against all positives (unit vectors, row i's
    answer is positive i), as an information-retrieval evaluator reports them."""
    scores = np.asarray(anchors) @ np.asarray(positives).T
    own = np.diag(scores)[:, None]
    rank = 1 + (scores > own).sum(axis=1)
    return {"recall_at_1": float(np.mean(rank == 1)), "mrr": float(np.mean(1.0 / rank))}
