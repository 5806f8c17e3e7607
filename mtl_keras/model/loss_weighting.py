"""How the tasks' losses are weighted: fixed numbers, or learned by uncertainty weighting.

"fixed" is each task's `loss_weight` (or `--loss-weights`). "uncertainty" is Kendall,
Gal and Cipolla (2018), "Multi-task learning using uncertainty to weigh losses": each
task gets a learned log-variance s, and its loss L becomes exp(-s) * L + s / 2, so a
task's weight settles near 1 / (2 L): a task whose loss is large (noisy, or on another
scale) weighs less. Keras has no such loss; the log-variances are weights of the model
(`TaskUncertainty`), so `fit` trains them with the rest on every backend.
"""

import keras
from keras import ops

from mtl_keras.errors import InputError

LOSS_WEIGHTINGS = ("fixed", "uncertainty")
UNCERTAINTY = "task_uncertainty"  # the layer's name: its variable path starts with it
LOG_VARIANCE = "log_variance"  # its variable's name (kept out of weight decay)


def check_loss_weighting(name):
    """Refuse a loss weighting that is not one of `LOSS_WEIGHTINGS`."""
    if name not in LOSS_WEIGHTINGS:
        raise InputError(
            f"unknown loss weighting {name!r}; choose from: {', '.join(LOSS_WEIGHTINGS)}."
        )


@keras.saving.register_keras_serializable(package="mtl_keras")
class TaskUncertainty(keras.layers.Layer):
    """One learned log-variance per task (start 0: every weight 1).

    Not part of the forward pass: `UncertaintyWeighted` reads it inside the loss. It
    lives on the model, so its variables are trained, saved and reloaded with it.
    """

    def __init__(self, task_names, **kwargs):
        super().__init__(**{"name": UNCERTAINTY, **kwargs})
        self.task_names = list(task_names)
        self.log_variance = self.add_weight(
            shape=(len(self.task_names),), initializer="zeros", name=LOG_VARIANCE
        )
        self.built = True  # its weight does not depend on any input

    def loss_weights(self):
        """{task: exp(-s)}: each task loss's current factor (the s / 2 term aside)."""
        values = ops.convert_to_numpy(ops.exp(-self.log_variance))
        return {name: float(v) for name, v in zip(self.task_names, values, strict=True)}

    def get_config(self):
        return {**super().get_config(), "task_names": self.task_names}


@keras.saving.register_keras_serializable(package="mtl_keras")
class UncertaintyWeighted(keras.losses.Loss):
    """A task's loss, per example, as exp(-s) * loss + s / 2 (s: its log-variance).

    Per example, so the sample weights that pick a task's examples out of a mixed batch
    gate the s / 2 term too: a batch without the task leaves its s alone. A saved model
    reloads compiled with the plain loss (`from_config`): the log-variance is a model
    weight, not part of the loss's config.
    """

    def __init__(self, loss, uncertainty, task_name, **kwargs):
        super().__init__(name=kwargs.pop("name", loss.name), reduction=loss.reduction, **kwargs)
        self.loss = loss
        # The variable, not the layer: a layer here would be saved with the compiled loss
        # (which reloads without it) instead of with the model.
        self.log_variance = uncertainty.log_variance
        self.index = uncertainty.task_names.index(task_name)

    def call(self, y_true, y_pred):
        log_variance = self.log_variance[self.index]
        return ops.exp(-log_variance) * self.loss.call(y_true, y_pred) + 0.5 * log_variance

    def get_config(self):
        return {"loss": keras.losses.serialize(self.loss)}

    @classmethod
    def from_config(cls, config):
        return keras.losses.deserialize(config["loss"])


def weighted_losses(losses, uncertainty):
    """{task: loss} as compiled: each wrapped in `UncertaintyWeighted` when the model
    learns its weights (`uncertainty` a `TaskUncertainty`), else as they are."""
    if uncertainty is None:
        return losses
    return {name: UncertaintyWeighted(loss, uncertainty, name) for name, loss in losses.items()}
