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


def test_flop_count_of_minilm():
    from benchmarks.flops import MINILM, encode_flops, forward_flops, sorted_batches

    # One word piece: 6 layers x (2·(4·384² + 2·384·1536) + 2·2·1·384) FLOPs.
    assert forward_flops([(1, 1)], **MINILM) == 6 * (2 * (4 * 384**2 + 2 * 384 * 1536) + 4 * 384)
    assert sorted_batches([3, 1, 2, 5], 2) == [(2, 5), (2, 2)]  # longest first, padded
    counted = encode_flops([3, 1, 2, 5], 2)
    assert counted["padded_word_pieces"] == 14 and counted["word_pieces"] == 11
    assert counted["padded"] > counted["real"] > 0


def test_matmul_rate_is_measured():
    from benchmarks.peak import gflops

    assert 0 < gflops("numpy", 64, 64, 64, seconds=0.01) < 1e5
