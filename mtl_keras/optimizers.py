"""The optimizer a scenario trains with."""

import keras

from mtl_keras.layerwise_lr import LayerwiseLR, layer_decay_multipliers


def make_optimizer(
    scenario, learning_rate, num_layers, layer_decay=0.8, head_multiplier=1.0, weight_decay=0.01
):
    """AdamW, wrapped in LayerwiseLR when the scenario decays rates by layer."""
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    if scenario.layer_decay:
        multipliers = layer_decay_multipliers(num_layers, layer_decay, head_multiplier)
        optimizer = LayerwiseLR(optimizer, multipliers)
    return optimizer
