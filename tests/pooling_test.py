import keras
import numpy as np
import pytest

from mtl_keras.encoding.pooling import (
    POOLING,
    AttentionPooling,
    ClsPooling,
    MaxPooling,
    MeanPooling,
    make_pooling,
)
from mtl_keras.errors import InputError


def test_masked_mean_ignores_padding():
    sequence = np.arange(24, dtype="float32").reshape(2, 3, 4)
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype="int32")
    out = keras.ops.convert_to_numpy(MeanPooling()(sequence, mask))
    np.testing.assert_allclose(out[0], sequence[0, :2].mean(axis=0))
    np.testing.assert_allclose(out[1], sequence[1, 0])


def test_normalize_gives_unit_vectors():
    sequence = np.random.default_rng(0).normal(size=(3, 5, 8)).astype("float32")
    mask = np.ones((3, 5), dtype="int32")
    out = keras.ops.convert_to_numpy(MeanPooling(normalize=True)(sequence, mask))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


def test_config_round_trip():
    layer = MeanPooling(normalize=True, name="pool")
    clone = MeanPooling.from_config(layer.get_config())
    assert clone.normalize is True and clone.name == "pool"
    assert layer.compute_output_shape((None, 7, 8), (None, 7)) == (None, 8)


def _batch():
    sequence = np.random.default_rng(1).normal(size=(2, 4, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype="int32")
    return sequence, mask


def test_cls_and_max_pooling_read_only_real_tokens():
    sequence, mask = _batch()
    sequence[:, -1] = 100.0  # padding: must never win the max
    cls = keras.ops.convert_to_numpy(ClsPooling()(sequence, mask))
    top = keras.ops.convert_to_numpy(MaxPooling()(sequence, mask))
    np.testing.assert_allclose(cls, sequence[:, 0])
    np.testing.assert_allclose(top[0], sequence[0, :3].max(axis=0))
    np.testing.assert_allclose(top[1], sequence[1, :2].max(axis=0))


def test_attention_pooling_starts_as_mean_and_learns_weights():
    sequence, mask = _batch()
    layer = AttentionPooling()
    mean = keras.ops.convert_to_numpy(MeanPooling()(sequence, mask))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(sequence, mask)), mean, atol=1e-6)
    layer.score.kernel.assign(np.ones((6, 1), "float32"))
    moved = keras.ops.convert_to_numpy(layer(sequence, mask))
    assert np.abs(moved - mean).max() > 1e-3
    weights = np.exp(sequence[1, :2].sum(axis=1))
    expected = (weights[:, None] * sequence[1, :2]).sum(axis=0) / weights.sum()
    np.testing.assert_allclose(moved[1], expected, rtol=1e-5)
    assert len(layer.trainable_weights) == 2  # the score's kernel and bias


@pytest.mark.parametrize("mode", list(POOLING))
def test_every_pooling_round_trips_its_config(mode):
    layer = make_pooling(mode, normalize=True, name="embedding")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is POOLING[mode] and type(layer) is POOLING[mode] and clone.normalize


def test_unknown_pooling_lists_the_choices():
    with pytest.raises(InputError, match="unknown pooling 'sum'; choose from: mean, cls, max"):
        make_pooling("sum")
