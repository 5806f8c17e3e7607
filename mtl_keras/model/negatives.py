"""Hard negatives through the encoder: each example's k negative texts as rows of one pass."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_keras")
class FoldNegatives(keras.layers.Layer):
    """(batch, k, length) -> (batch * k, length): the k hard negatives of each example,
    example by example, as rows the backbone embeds in one pass (a layer, not a reshape
    in the functional graph, whose batch and length are unknown until called)."""

    def call(self, inputs):
        return ops.reshape(inputs, (-1, ops.shape(inputs)[-1]))

    def compute_output_shape(self, input_shape):
        return (None, input_shape[-1])
