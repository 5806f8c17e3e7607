"""Token vectors -> one sentence vector: mean (the default), [CLS], max or attention.

sentence-transformers offers mean, CLS and max pooling; attention pooling is a learned
weighting of the tokens. Each layer takes the sequence and its `padding_mask` as named
inputs, so the functional model (and its saved config) shows where they come from.
"""

import keras
from keras import ops

from mtl_keras.errors import InputError


class Pooling(keras.layers.Layer):
    """Common part: the output shape and the optional L2 normalisation."""

    def __init__(self, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize

    def call(self, sequence, padding_mask):
        pooled = self.pool(sequence, ops.cast(padding_mask, "bool"))
        if self.normalize:
            pooled = ops.normalize(pooled, axis=-1, order=2)
        return pooled

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}


@keras.saving.register_keras_serializable(package="mtl_keras")
class MeanPooling(Pooling):
    """Average of the token vectors where `padding_mask` is true.

    Reuses `GlobalAveragePooling1D`, whose masked mean is exactly sentence-transformers'
    mean pooling.

    Args:
        normalize: L2-normalise each embedding (for cosine similarity as a dot product).
    """

    def __init__(self, normalize=False, **kwargs):
        super().__init__(normalize, **kwargs)
        self.average = keras.layers.GlobalAveragePooling1D(dtype=self.dtype_policy)

    def pool(self, sequence, mask):
        return self.average(sequence, mask=mask)


@keras.saving.register_keras_serializable(package="mtl_keras")
class ClsPooling(Pooling):
    """The [CLS] token's vector (not BERT's pooler dense: sentence-transformers' CLS mode)."""

    def pool(self, sequence, mask):
        return sequence[:, 0, :]


@keras.saving.register_keras_serializable(package="mtl_keras")
class MaxPooling(Pooling):
    """Element-wise maximum over the real tokens (padding never wins)."""

    def pool(self, sequence, mask):
        # GlobalMaxPooling1D ignores masks, so padding is pushed down by hand first.
        lowest = ops.cast(-1e9, sequence.dtype)
        return ops.max(ops.where(mask[:, :, None], sequence, lowest), axis=1)


@keras.saving.register_keras_serializable(package="mtl_keras")
class AttentionPooling(Pooling):
    """A learned weighting: softmax over the real tokens of a linear score per token.

    The score layer starts at zero, so an untrained attention pooling is exactly mean
    pooling: the pretrained embedding is where training starts from.
    """

    def __init__(self, normalize=False, **kwargs):
        super().__init__(normalize, **kwargs)
        self.score = keras.layers.Dense(
            1, kernel_initializer="zeros", dtype=self.dtype_policy, name="score"
        )

    def build(self, sequence_shape, padding_mask_shape=None):
        self.score.build(sequence_shape)

    def pool(self, sequence, mask):
        scores = ops.squeeze(self.score(sequence), axis=-1)
        weights = ops.softmax(ops.where(mask, scores, ops.cast(-1e9, scores.dtype)), axis=-1)
        return ops.einsum("bt,btd->bd", weights, sequence)


POOLING = {"mean": MeanPooling, "cls": ClsPooling, "max": MaxPooling, "attention": AttentionPooling}


def make_pooling(mode, **kwargs):
    """The pooling layer called `mode` (one of POOLING)."""
    if mode not in POOLING:
        raise InputError(f"unknown pooling {mode!r}; choose from: {', '.join(POOLING)}.")
    return POOLING[mode](**kwargs)
