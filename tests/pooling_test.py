import keras
import numpy as np

from mtl_keras.pooling import MeanPooling


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
