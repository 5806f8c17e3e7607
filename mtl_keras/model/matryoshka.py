"""Matryoshka training (sentence-transformers' `MatryoshkaLoss`): a task that trains the
embedding also trains its first k values to work on their own, so a user can keep 256,
128 or 64 of them (`SentenceEncoder.encode(..., dimensions=k)`) at a small cost.

The task's output holds its scores at every width, stacked on axis 1 (full width first):
each width's scores are the kind's own output over embeddings cut to their first k
values (the kind normalises them again). The loss is the weighted sum of the kind's loss
at each width, as sentence-transformers sums it; the batch metrics read the full width.
"""

import dataclasses
import math

import keras

from mtl_keras.errors import InputError

EMBEDDINGS = ("embedding", "pair_embedding", "negative_embedding")  # cut; "sequence" is not


def widths(dims, weights, tasks, hidden=None):
    """((width, ...), (weight, ...)) to train at, widest first, with the full `hidden`
    width always among them (weight 1 unless given); ((), ()) without `dims`.

    Args:
        dims: widths (ints), in any order: sentence-transformers' `matryoshka_dims`.
        weights: one per width (default 1 each): `matryoshka_weights`.
        tasks: the run's tasks; one must train the embedding (`Kind.matryoshka`).
        hidden: the embedding's full width (None: the widths are only checked).
    """
    dims = tuple(dims)
    weights = tuple(weights) or (1.0,) * len(dims)
    if not dims:
        if weights:
            raise InputError("--matryoshka-weights needs --matryoshka-dims.")
        return (), ()
    check_widths(dims, weights)
    if not any(t.spec.matryoshka for t in tasks):
        names = ", ".join(t.name for t in tasks)
        raise InputError(f"--matryoshka-dims trains the embedding of pair or contrastive tasks, "
                         f"and this run has none (its tasks: {names}).")  # fmt: skip
    pairs = dict(zip(dims, map(float, weights), strict=True))
    if hidden is not None:
        if max(dims) > hidden:
            raise InputError(f"--matryoshka-dims {max(dims)} is wider than the embedding "
                             f"({hidden} values): give widths up to {hidden}.")  # fmt: skip
        pairs.setdefault(hidden, 1.0)
    ordered = sorted(pairs, reverse=True)
    return tuple(ordered), tuple(pairs[d] for d in ordered)


def with_widths(tasks, dims, weights, hidden):
    """`tasks`, those that train the embedding set to train at `widths`' widths."""
    dims, weights = widths(dims, weights, tasks, hidden)
    return [dataclasses.replace(t, matryoshka_dims=dims, matryoshka_weights=weights)
            if dims and t.spec.matryoshka else t for t in tasks]  # fmt: skip


def check_widths(dims, weights):
    """Whole numbers >= 1, no repeats; as many finite weights >= 0 (not all 0)."""
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise InputError(f"--matryoshka-dims {list(dims)}: each width must be a whole number "
                         ">= 1, e.g. 384,256,128,64.")  # fmt: skip
    if len(set(dims)) != len(dims):
        raise InputError(f"--matryoshka-dims {list(dims)} repeats a width.")
    if len(weights) != len(dims):
        raise InputError(f"--matryoshka-weights gives {len(weights)} weights for "
                         f"{len(dims)} widths: give one per width.")  # fmt: skip
    numbers = all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)
    if not numbers or any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
        raise InputError(f"--matryoshka-weights {list(weights)}: weights must be finite, "
                         ">= 0 and not all 0.")  # fmt: skip


def task_output(task, head, features):
    """The task's output (`Kind.output`); with Matryoshka widths, the output at each
    width (the embeddings cut to their first k values), stacked on axis 1."""
    if not task.matryoshka_dims:
        return task.spec.output(task, head, features)
    per_width = []
    for width in task.matryoshka_dims:
        cut = {k: (v[:, :width] if k in EMBEDDINGS else v) for k, v in features.items()}
        per_width.append(task.spec.output(task, head, cut))
    return keras.ops.stack(per_width, axis=1)


def task_loss(task):
    """The kind's loss, summed over the widths with their weights under Matryoshka."""
    loss = task.spec.loss(task)
    return MatryoshkaLoss(loss, task.matryoshka_weights) if task.matryoshka_dims else loss


def task_metrics(task):
    """The kind's metrics, on the full width under Matryoshka."""
    metrics = task.spec.metrics(task)
    return [FullWidth(m) for m in metrics] if task.matryoshka_dims else metrics


@keras.saving.register_keras_serializable(package="mtl_keras")
class MatryoshkaLoss(keras.losses.Loss):
    """sum_i weights[i] * loss(y_true, y_pred[:, i]): a kind's loss (per example) at each
    width of a `stacked_output`."""

    def __init__(self, loss, weights, name="matryoshka", **kwargs):
        super().__init__(name=name, **kwargs)
        self.loss = keras.losses.get(loss)
        self.weights = [float(w) for w in weights]

    def call(self, y_true, y_pred):
        return sum(w * self.loss.call(y_true, y_pred[:, i]) for i, w in enumerate(self.weights))

    def get_config(self):
        return {**super().get_config(), "loss": keras.losses.serialize(self.loss),
                "weights": self.weights}  # fmt: skip


@keras.saving.register_keras_serializable(package="mtl_keras")
class FullWidth(keras.metrics.Metric):
    """A kind's metric on the full-width scores of a `stacked_output` (`y_pred[:, 0]`), so
    a Matryoshka run's batch metrics read as any other run's."""

    def __init__(self, metric, **kwargs):
        metric = keras.metrics.get(metric)
        super().__init__(name=kwargs.pop("name", metric.name), **kwargs)
        self.metric = metric  # tracked: its variables are this metric's

    def update_state(self, y_true, y_pred, sample_weight=None):
        return self.metric.update_state(y_true, y_pred[:, 0], sample_weight=sample_weight)

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()

    def get_config(self):
        return {**super().get_config(), "metric": keras.metrics.serialize(self.metric)}
