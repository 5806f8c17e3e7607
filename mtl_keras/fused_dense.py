"""BERT's feed-forward layers in a form TensorFlow runs as one fused kernel each.

Keras' `Dense` multiplies a [batch, length, features] input as one batched product and
adds its bias with a plain add; TensorFlow then runs the product, the bias and GELU as
three kernels, each a pass over the [tokens, 1536] activations. Written as a 2-D
`MatMul` followed by `BiasAdd`, TensorFlow's graph optimiser fuses the three into one
oneDNN kernel (`_FusedMatMul` with the exact GELU); keras-hub's transformer layers make
their `Dense` layers themselves, so this module switches those instances to the subclass
below. Written by hand because neither Keras nor keras-hub emits that pattern.

Measured on an AMD EPYC (2 vCPUs, a study's training beside at the lowest CPU priority):
the intermediate layer at batch 32 x 128 in 26.3 ms against 31.8; `encode` 1.09x on
whole BBC articles and 1.16x on tweets, min cosine 0.9999998 to Keras' own layers.
"""

import keras


@keras.saving.register_keras_serializable(package="mtl_keras")
class FusedDense(keras.layers.Dense):
    """`Dense` with the same weights and results (to float rounding) that TensorFlow can
    fuse with its bias and activation. On other backends, with LoRA or quantized weights,
    and without a bias, it is Keras' own `Dense.call`."""

    def call(self, inputs, training=None):
        if (
            keras.backend.backend() != "tensorflow"
            or self.lora_enabled
            or self.quantization_mode
            or self.bias is None
        ):
            return super().call(inputs, training=training)
        import tensorflow as tf

        x = tf.reshape(inputs, [-1, inputs.shape[-1]])
        x = tf.nn.bias_add(tf.matmul(x, self.kernel), self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return tf.reshape(x, tf.concat([tf.shape(inputs)[:-1], [self.units]], axis=0))

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantized as a `Dense` is (Keras refuses subclasses unless told: this one adds
        no weights); a quantized layer runs Keras' `quantized_call`, not `call`."""
        super().quantize(mode, type_check=False, config=config)


FEEDFORWARD = ("_feedforward_intermediate_dense", "_feedforward_output_dense")


def fuse_feedforward(backbone):
    """Switch the feed-forward `Dense` layers of a keras-hub BERT backbone's transformer
    layers to `FusedDense`, in place (nothing else changes: names, weights, variable
    paths and the saved config stay as they were). Returns the backbone."""
    for layer in getattr(backbone, "transformer_layers", ()):
        for name in FEEDFORWARD:
            dense = getattr(layer, name, None)
            if type(dense) is keras.layers.Dense:
                dense.__class__ = FusedDense
    return backbone
