"""`FusedDense`: Keras' `Dense` results, gradients and saved files, in TensorFlow's fusable form."""

import keras
import numpy as np
import pytest

from mtl_keras.backbone import TunableBertBackbone
from mtl_keras.fused_dense import FEEDFORWARD, FusedDense, fuse_feedforward
from tests.conftest import make_tiny_backbone, tiny_inputs


def feedforward_layers(backbone):
    return [getattr(layer, name) for layer in backbone.transformer_layers for name in FEEDFORWARD]


@pytest.mark.parametrize("activation", ["gelu", None])
def test_same_outputs_and_gradients_as_dense(activation):
    x = np.random.default_rng(0).standard_normal((3, 5, 8)).astype("float32")
    plain = keras.layers.Dense(6, activation=activation)
    plain.build(x.shape)
    fused = FusedDense(6, activation=activation)
    fused.build(x.shape)
    fused.set_weights(plain.get_weights())
    np.testing.assert_allclose(fused(x), plain(x), atol=1e-6)
    assert tuple(fused(x[:, :2]).shape) == (3, 2, 6)  # any batch and length

    def gradients(layer):
        if keras.backend.backend() != "tensorflow":
            pytest.skip("TensorFlow's GradientTape; on JAX `FusedDense` is Dense")
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(loss, [v.value for v in layer.trainable_variables])

    for a, b in zip(gradients(fused), gradients(plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_fusing_a_backbone_changes_only_the_feedforward_classes():
    backbone = make_tiny_backbone()
    before = backbone(tiny_inputs())["sequence_output"]
    paths = [v.path for v in backbone.weights]
    assert fuse_feedforward(backbone) is backbone
    layers = feedforward_layers(backbone)
    assert len(layers) == 2 * len(backbone.transformer_layers) and all(
        type(layer) is FusedDense for layer in layers
    )
    assert [v.path for v in backbone.weights] == paths
    np.testing.assert_allclose(backbone(tiny_inputs())["sequence_output"], before, atol=1e-6)
    fuse_feedforward(backbone)  # twice: the same
    assert all(type(layer) is FusedDense for layer in feedforward_layers(backbone))


def test_tunable_backbone_is_fused_and_reloads_with_the_same_outputs(tmp_path):
    backbone = TunableBertBackbone.from_backbone(make_tiny_backbone())
    assert all(type(layer) is FusedDense for layer in feedforward_layers(backbone))
    path = tmp_path / "backbone.keras"
    backbone.save(path)
    again = keras.models.load_model(path)
    assert all(type(layer) is FusedDense for layer in feedforward_layers(again))
    np.testing.assert_allclose(
        again(tiny_inputs())["sequence_output"],
        backbone(tiny_inputs())["sequence_output"],
        atol=1e-6,
    )


def test_lora_and_quantized_layers_keep_keras_call():
    x = np.ones((2, 3, 4), "float32")
    layer = FusedDense(5, activation="gelu")
    layer.build(x.shape)
    layer.enable_lora(2)
    np.testing.assert_allclose(layer(x), keras.layers.Dense.call(layer, x), atol=1e-6)
    plain, fused = keras.layers.Dense(5), FusedDense(5)
    plain.build(x.shape)
    fused.build(x.shape)
    fused.set_weights(plain.get_weights())
    for layer in (plain, fused):
        layer.quantize("int8")  # Keras quantizes a subclass only when it says it can
    assert fused.quantization_mode == "int8"
    np.testing.assert_array_equal(fused(x), plain(x))
