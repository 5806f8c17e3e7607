"""The benchmarks' bound model: dropout and GELU really are switched off."""

import keras
import numpy as np

from benchmarks.common import without_elementwise_work
from tests.conftest import make_tiny_backbone, tiny_inputs


def test_without_elementwise_work_removes_dropout_and_gelu():
    keras.utils.set_random_seed(0)
    backbone = make_tiny_backbone()
    inputs = tiny_inputs()
    before = backbone(inputs, training=False)["sequence_output"]
    noisy = backbone(inputs, training=True)["sequence_output"]
    assert not np.allclose(before, noisy)  # dropout is on in training

    without_elementwise_work(backbone)
    after = backbone(inputs, training=False)["sequence_output"]
    trained = backbone(inputs, training=True)["sequence_output"]
    np.testing.assert_allclose(trained, after, atol=1e-6)  # no dropout left
    assert not np.allclose(after, before, atol=1e-4)  # GELU gone: a different function
    for layer in backbone.transformer_layers:
        assert layer._feedforward_intermediate_dense.activation is keras.activations.linear
