"""The learning-rate schedule of a run: linear warm-up, then linear or cosine decay to 0."""

import math

import keras
from keras import ops

from mtl_keras.errors import InputError

SCHEDULES = ("linear", "cosine", "constant")


@keras.saving.register_keras_serializable(package="mtl_keras")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Warm up linearly to `peak` over `warmup_steps`, then decay to 0 at `total_steps`.

    "linear" is BERT's fine-tuning schedule (Hugging Face's
    `get_linear_schedule_with_warmup`), "cosine" decays along half a cosine, "constant"
    stays at `peak` after the warm-up. Written here because Keras' `CosineDecay` has a
    warm-up but its `PolynomialDecay` (the linear one) has none; one class gives the three
    shapes the same warm-up. Steps count optimizer iterations, as Keras passes them.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, decay="linear"):
        if decay not in SCHEDULES:
            raise InputError(f"unknown schedule {decay!r}; choose from: {', '.join(SCHEDULES)}.")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        # Step k of the warm-up trains at (k + 1) / warmup of the peak: never a zero step.
        rising = self.peak * ops.minimum((step + 1.0) / warmup, 1.0)
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "linear":
            falling = self.peak * (1.0 - progress)
        elif self.decay == "cosine":
            falling = self.peak * 0.5 * (1.0 + ops.cos(math.pi * progress))
        else:
            falling = ops.full_like(progress, self.peak)
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay}  # fmt: skip
