"""The optimizer a run trains with: AdamW on a warm-up + decay schedule, per-group rates."""

import keras

from mtl_keras.model.loss_weighting import LOG_VARIANCE
from mtl_keras.training.layerwise_lr import LayerwiseLR, layer_decay_multipliers
from mtl_keras.training.schedules import WarmupDecay


def make_optimizer(
    scenario,
    learning_rate,
    num_layers,
    layer_decay=0.8,
    head_multiplier=1.0,
    weight_decay=0.01,
    total_steps=None,
    schedule="constant",
    warmup_ratio=0.0,
    accumulation_steps=1,
):
    """AdamW on `schedule` over `total_steps`, in `LayerwiseLR` for per-group rates.

    The heads (everything outside the BERT backbone: heads, attention pooling) take
    `head_multiplier` x the rate in every scenario: they start from random weights and
    want a bigger step than the pretrained encoder. `llrd` also decays the encoder's
    rates layer by layer. The multipliers scale the scheduled rate at every step.
    """
    rate = learning_rate
    if total_steps:
        warmup = int(round(warmup_ratio * total_steps))
        rate = WarmupDecay(learning_rate, total_steps, warmup, schedule)
    optimizer = keras.optimizers.AdamW(
        learning_rate=rate,
        weight_decay=weight_decay,
        gradient_accumulation_steps=accumulation_steps if accumulation_steps > 1 else None,
    )
    # Uncertainty weighting's log-variances are not weights to shrink towards 0.
    optimizer.exclude_from_weight_decay(var_names=[LOG_VARIANCE])
    decay = layer_decay if scenario.layer_decay else 1.0
    # Wrapped even when every factor is 1: the wrapper also sums embedding gradients'
    # repeated rows (TensorFlow) and lets a model train a subset of the variables the
    # optimizer was built for (JAX, `LayerwiseLR.train`).
    return LayerwiseLR(optimizer, layer_decay_multipliers(num_layers, decay, head_multiplier))
