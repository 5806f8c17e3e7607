"""Masked mean pooling: the sentence embedding of sentence-transformers."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_keras")
class MeanPooling(keras.layers.Layer):
    """Average of the token vectors where `padding_mask` is true.

    Reuses `GlobalAveragePooling1D`, whose masked mean is exactly sentence-transformers'
    mean pooling; this layer only takes the mask as a named input so the functional
    model (and its saved config) shows where it comes from.

    Args:
        normalize: L2-normalise each embedding (for cosine similarity as a dot product).
    """

    def __init__(self, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize
        self.average = keras.layers.GlobalAveragePooling1D(dtype=self.dtype_policy)

    def call(self, sequence, padding_mask):
        pooled = self.average(sequence, mask=ops.cast(padding_mask, "bool"))
        if self.normalize:
            pooled = ops.normalize(pooled, axis=-1, order=2)
        return pooled

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}
