"""A keras-hub BERT backbone whose freezing and LoRA survive `.keras` save and reload."""

import keras
import keras_hub


@keras.saving.register_keras_serializable(package="mtl_keras")
class TunableBertBackbone(keras_hub.models.BertBackbone):
    """`BertBackbone` that records which of its layers are frozen and its LoRA rank.

    keras-hub rebuilds a backbone from its architecture arguments only, so per-layer
    `trainable` flags and `enable_lora` are lost on reload: the optimizer state then no
    longer lines up with the trainable variables (and LoRA weights have nowhere to go).
    This subclass adds both to its config and re-applies them when rebuilt.

    Args:
        frozen_layers: names of direct sub-layers to freeze (e.g. `pooled_dense`,
            `token_embedding`, `transformer_layer_0`).
        lora_rank: if set, `enable_lora(lora_rank)` (keras-hub's LoRA on query/value).
        inference_mode: always run without dropout, even inside `fit`. For a frozen
            backbone: `trainable=False` does not switch dropout off, and a functional
            model passes its own `training` flag to every layer, overriding a
            `training=False` given when the graph was built.
        **kwargs: `BertBackbone` arguments.
    """

    def __init__(self, *args, frozen_layers=(), lora_rank=None, inference_mode=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.inference_mode = inference_mode
        if lora_rank:
            self.enable_lora(lora_rank)
        for name in frozen_layers:
            self.get_layer(name).trainable = False
        self._train_adapters()

    @classmethod
    def from_backbone(cls, backbone, dtype=None):
        """Copy a plain `BertBackbone` (same config and weights) into this class, computing
        in `dtype` (a Keras dtype policy name, e.g. "mixed_bfloat16") when given."""
        if isinstance(backbone, cls) and dtype is None:
            return backbone
        config = backbone.get_config()
        if dtype is not None:
            config["dtype"] = dtype
        clone = cls.from_config(config)
        clone.set_weights(backbone.get_weights())
        return clone

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False if self.inference_mode else training, mask=mask)

    def unfreeze(self):
        """Make every layer trainable, or with LoRA only what keras-hub's `enable_lora`
        leaves trainable (the query/value adapters and biases, not their kernels).

        `trainable = True` alone is not enough: on JAX it sets every sub-layer and weight
        trainable (the LoRA kernels too); on TensorFlow it leaves the sub-layers as they are.
        """
        self.trainable = True
        for layer in self._flatten_layers(include_self=False):
            layer.trainable = not self.lora_rank
        self._train_adapters()

    def _train_adapters(self):
        """The LoRA layers trainable again, their kernels not (as `enable_lora` left them);
        freezing a transformer layer froze them too on JAX, not on TensorFlow."""
        for layer in self._flatten_layers(include_self=False):
            if getattr(layer, "lora_enabled", False):
                layer.trainable = True
                layer._kernel.trainable = False

    @property
    def lora_rank(self):
        return getattr(self, "_lora_rank", None)

    def frozen_layers(self):
        return [layer.name for layer in self.layers if layer.weights and not layer.trainable]

    def get_config(self):
        return {
            **super().get_config(),
            "frozen_layers": self.frozen_layers(),
            "lora_rank": self.lora_rank,
            "inference_mode": self.inference_mode,
        }
