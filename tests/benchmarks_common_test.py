"""The benchmarks' bound model: dropout and GELU really are switched off."""

import keras
import numpy as np
import pytest

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
    from benchmarks.flops import (
        MINILM,
        arrival_batches,
        encode_flops,
        forward_flops,
        sorted_batches,
    )

    # One word piece: 6 layers x (2·(4·384² + 2·384·1536) + 2·2·1·384) FLOPs.
    assert forward_flops([(1, 1)], **MINILM) == 6 * (2 * (4 * 384**2 + 2 * 384 * 1536) + 4 * 384)
    assert sorted_batches([3, 1, 2, 5], 2) == [(2, 5), (2, 2)]  # longest first, padded
    assert arrival_batches([3, 1, 2, 5, 4], 2) == [(2, 3), (2, 5), (1, 4)]  # as they came
    counted = encode_flops([3, 1, 2, 5], 2)
    assert counted["padded_word_pieces"] == 14 and counted["word_pieces"] == 11
    assert counted["padded"] > counted["real"] > 0
    as_served = encode_flops([3, 1, 2, 5], 2, batching=arrival_batches)
    assert as_served["padded_word_pieces"] == 16 and as_served["real"] == counted["real"]


def test_matmul_rate_is_measured():
    from benchmarks.peak import gflops

    assert 0 < gflops("numpy", 64, 64, 64, seconds=0.01) < 1e5


def test_flops_split_into_the_profiles_product_groups():
    from benchmarks.flops import MINILM, forward_flops, training_flops
    from benchmarks.profile_ops import product_flops

    shapes = [(32, 128), (7, 33)]
    groups = product_flops(shapes)
    assert sum(groups.values()) == forward_flops(shapes, **MINILM)
    # Per layer and word piece: projections 8·h², feed-forward 4·h·f (f = 4h: twice as much).
    assert groups["feed-forward"] == 2 * groups["projections (q, k, v, out)"]
    assert training_flops(shapes) == 3 * forward_flops(shapes, **MINILM)


PROFILED = {  # op names from a profile of MiniLM (encode and a train step) -> group
    "bert_backbone_1/transformer_layer_0_1/self_attention_layer_1/key_1/einsum/Einsum:"
    "_MklEinsum": "projections (q, k, v, out)",
    "bert_backbone_1/transformer_layer_2_1/self_attention_layer_1/query_1/MatMul:"
    "_MklBatchMatMulV2": "projections (q, k, v, out)",
    "gradient_tape/bert_backbone_1/transformer_layer_2_1/feedforward_intermediate_dense_1/"
    "Tensordot/MatMul/MatMul_1:_MklMatMul": "feed-forward",
    "bert_backbone_1/transformer_layer_2_1/self_attention_layer_1/MatMul/ArithmeticOptimizer/"
    "FoldTransposeIntoMatMul_MatMul:_MklBatchMatMulV2": "attention products",
    "bert_backbone_1/transformer_layer_2_1/self_attention_layer_1/MatMul_1:_MklBatchMatMulV2": "attention products",
    "bert_backbone_1/transformer_layer_0_1/feedforward_intermediate_dense_1/Gelu/Tanh:Tanh": "gelu",
    "bert_backbone_1/transformer_layer_0_1/self_attention_layer_1/softmax_1/SelectV2:SelectV2": "softmax and mask",
    "bert_backbone_1/transformer_layer_0_1/feedforward_layer_norm_1/moments/"
    "SquaredDifference:SquaredDifference": "layer norm",
    "bert_backbone_1/transformer_layer_0_1/self_attention_layer_1/transpose_2:_MklTranspose": "transposes",
    "bert_backbone_1/transformer_layer_2_1/self_attention_layer_1/dropout_8_1/stateless_dropout/"
    "stateless_random_uniform/StatelessRandomUniformV2:StatelessRandomUniformV2": "dropout",
    "gradient_tape/bert_backbone_1/transformer_layer_0_1/feedforward_output_dense_1/BiasAdd/"
    "BiasAddGrad:BiasAddGrad": "biases, residuals",
    "bert_backbone_1/token_embedding_1/GatherV2:GatherV2": "other",
}


def test_profiled_ops_fall_into_their_groups():
    from benchmarks.profile_ops import group_of

    assert {name: group_of(name) for name in PROFILED} == PROFILED


@pytest.mark.graph  # profiles the traced step
def test_profile_of_a_tiny_train_step_reads_op_names():
    """A real profile: ops come back by name as "<layer path>/<op>:<op type>"."""
    import tensorflow as tf

    from benchmarks.profile_ops import profiled

    backbone = make_tiny_backbone()

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            out = backbone(x, training=True)["sequence_output"]
        return tape.gradient(tf.reduce_sum(out), backbone.trainable_variables)

    step(tiny_inputs())
    times, seconds = profiled(lambda: step(tiny_inputs()))
    assert seconds > 0 and times and all(t >= 0 for t in times.values())
    assert any("bert_backbone" in name and ":" in name for name in times)


def test_backends_report_holds_the_train_steps_against_the_peak_when_measured():
    from benchmarks.report import backends_peak_lines

    result = {"step_gflop": 190.4, "tensorflow_gflops": 150.2, "jax_gflops": 120.0,
              "tensorflow_fraction_of_peak": 0.42, "jax_fraction_of_peak": 0.336,
              "matmul_peak": {"peak_gflops": 357.6, "peak_from": "torch projection"}}  # fmt: skip
    (line,) = [text for text in backends_peak_lines(result) if text]
    assert "a step is 190 GFLOP" in line and "TensorFlow 150 GFLOP/s (**42%** of the fp32" in line
    assert "peak of 358 GFLOP/s, torch projection" in line and "JAX 120 GFLOP/s (34%)" in line
    assert backends_peak_lines({"jax_over_tensorflow": 0.78}) == []  # made before the peak


def test_results_are_kept_per_cpu_and_reported_under_its_name(tmp_path, monkeypatch):
    """A run on one CPU writes beside another CPU's numbers, not over them, even where two
    CPU generations share a model name."""
    from benchmarks import common, report

    assert common.cpu_folder("Intel(R) Xeon(R) Processor", ["avx2"]).startswith(
        "intel-xeon-processor-")  # fmt: skip
    assert common.cpu_folder(None).startswith("unknown-cpu-")
    assert common.cpu_folder("AMD EPYC", ["avx2"]) != common.cpu_folder("AMD EPYC", ["avx512f"])
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    machines = (("AMD EPYC", ["avx2", "avx512f"], 111.0), ("AMD EPYC", ["avx2"], 222.0),
                ("Intel(R) Xeon(R) Processor", ["avx2"], 333.0))  # fmt: skip
    for cpu, flags, rate in machines:
        env = {"cpu_model": cpu, "cpu_vector_flags": flags, "commit": "abc1234",
               "date": "2026-11-30", "cpus": 2}  # fmt: skip
        monkeypatch.setattr(common, "environment", lambda env=env: env)
        serving = {"sentences": 10, "throughput_batch_32": {"median": rate},
                   "single_sentence_latency_ms": {"p50": 1.0, "p95": 2.0, "calls": 10}}  # fmt: skip
        if rate == 333.0:  # a run that measured the peak and recorded its word pieces
            serving["throughput_batch_32"].update(gflops_padded=150.0, fraction_of_peak=0.5)
            serving["single_sentence_latency_ms"].update(gflops=30.0, fraction_of_peak=0.1)
            serving.update(matmul_peak={"peak_gflops": 300.0, "peak_from": "numpy square_2048"},
                           mean_word_pieces={"bbc": 128.0, "tweets": 33.0})  # fmt: skip
        common.write_result("serving", serving)

    assert len(list((tmp_path / "results").iterdir())) == 3
    report.main()
    text = (tmp_path / "BENCHMARKS.md").read_text()
    expected = {"## On AMD EPYC (with avx512f)": "111.0", "## On AMD EPYC (without avx512f)": "222.0",
                "## On Intel(R) Xeon(R) Processor": "333.0"}  # fmt: skip
    parts = {"## " + part.split("\n")[0]: part for part in text.split("\n## ")[1:]}
    assert sorted(parts) == sorted(expected)
    for heading, rate in expected.items():
        assert f"{rate} sentences/s" in parts[heading]
        assert parts[heading].count("### Serving signature") == 1
    intel = parts["## On Intel(R) Xeon(R) Processor"]
    assert "150 GFLOP/s (**50%** of the fp32 matmul peak of 300 GFLOP/s" in intel
    assert "5 BBC articles (128 word pieces on average" in intel
    assert "5 BBC first paragraphs" in parts["## On AMD EPYC (with avx512f)"]


def test_exports_report_gives_the_sentences_word_pieces_when_recorded():
    from benchmarks.encode import mean_word_pieces
    from benchmarks.report import exports_section

    env = {"cpu_model": "AMD EPYC", "cpu_vector_flags": ["avx2"], "commit": "abc1234",
           "date": "2026-12-01", "cpus": 2}  # fmt: skip
    older = {"saved_model_mb": 177.0, "sentences_per_s_median": 60.0, "topic_test_accuracy": 0.9,
             "topic_test_examples": 219}  # fmt: skip
    exports = {"environment": env, "model": "m.keras", "trained_here": False,
               "parity": {"sentences": 4, "sentence_transformers_min_cosine": 1.0,
                          "keras_hub_min_cosine": 1.0, "sentence_transformers_modules": ["T"]},
               "serving": {"float32": older, "int8": {**older, "sentences_per_s_median": 30.0}}}  # fmt: skip
    text = "\n".join(exports_section(exports))
    assert "2 BBC texts, then 2 tweets" in text and "did not record their word pieces" in text
    assert "`int8` is 1.0x smaller and runs at 0.50x the float32 speed." in text

    newer = {k: v for k, v in older.items() if k != "sentences_per_s_median"}
    exports["serving"] = {"float32": {**newer, "median": 60.0}, "int8": {**newer, "median": 15.0}}
    exports["sentences"], exports["mean_word_pieces"] = 4, mean_word_pieces([128, 100, 30, 36])
    text = "\n".join(exports_section(exports))
    assert "2 BBC articles (114 word pieces on average, cut at 128), then 2 tweets (33)." in text
    assert "runs at 0.25x the float32 speed." in text


def test_cpu_exports_report_sets_our_fastest_export_against_sentence_transformers():
    import json
    from pathlib import Path

    from benchmarks.report import cpu_exports_section

    result = json.loads(Path("benchmarks/results/amd-epyc-a35562/cpu_exports.json").read_text())
    result["variants"] = {n: v for n, v in result["variants"].items()  # ours alone
                          if not n.startswith("st ") and "same process" not in n}  # fmt: skip
    result["variants"]["openvino int8"]["end_to_end"] = 160.0
    peer = {"end_to_end": 200.0, "vs_tf_float32": 3.0, "latency_ms_p50": 9.0,
            "latency_ms_p95": 11.0, "mb": 23.0, "cosine_mean": 0.997, "cosine_min": 0.985}  # fmt: skip
    result["variants"]["st openvino int8"] = peer
    result["variants"]["st onnx int8"] = {**peer, "end_to_end": 150.0}
    result["fastest_peer"] = "st openvino int8"
    text = "\n".join(cpu_exports_section(result))
    assert "Our fastest (openvino int8) runs at **0.80x** their fastest (st openvino int8)." in text
    assert (
        "| st openvino int8 | 23 | 200.0 | **3.00x** | – | – | 9.0 / 11.0 | 0.9970 / 0.9850 | – |"
        in text
    )
    # Ours timed again in their process, interleaved with theirs: the comparison made.
    result["variants"]["openvino int8 (same process)"] = {**peer, "end_to_end": 220.0}
    text = "\n".join(cpu_exports_section(result))
    assert "Our fastest (openvino int8 (same process)) runs at **1.10x** their fastest" in text
    del result["fastest_peer"]  # a run without the peer's venv: no such sentence
    assert "their fastest" not in "\n".join(cpu_exports_section(result))
