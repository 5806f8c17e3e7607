"""The ONNX rewrites: every layer norm and attention of a tiny BERT found, the outputs
unchanged on padded batches, and OpenVINO reading them as its fused operations."""

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf

from mtl_keras.encoding.preprocessing import FEATURES
from mtl_keras.export.cpu import write_onnx
from mtl_keras.export.onnx_graph import fuse_layer_norms, plain_attention
from tests.conftest import make_tiny_backbone


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """(Keras' own export, ours rewritten, the rewrite counts) of a tiny two-layer model."""
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.tasks import resolve_tasks

    folder = tmp_path_factory.mktemp("onnx_graph")
    keras.utils.set_random_seed(0)
    # Dropout 0.1 as in every pretrained BERT: Keras' attention then takes its masked
    # softmax path, the graph the rewrite is for (at 0 it calls dot_product_attention).
    model = MultiTaskModel(make_tiny_backbone(dropout=0.1), resolve_tasks("topic"))
    signature = {f: tf.TensorSpec([None, None], tf.int32, name=f) for f in FEATURES}
    plain = folder / "keras.onnx"
    model.inference_model().export(str(plain), format="onnx", input_signature=[signature],
                                   verbose=False)  # fmt: skip
    ours = folder / "ours.onnx"
    return plain, ours, write_onnx(model, ours)


def padded_batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 30, size=(3, 9)).astype("int32")
    mask = np.ones((3, 9), "int32")
    mask[1, 4:], mask[2, 2:] = 0, 0  # two padded rows: the mask matters
    ids[mask == 0] = 0
    return {"token_ids": ids, "padding_mask": mask, "segment_ids": np.zeros_like(ids)}


def test_every_layer_norm_and_attention_is_rewritten(onnx_files):
    _, ours, counts = onnx_files
    assert counts == {"layer_norms": 2 * 2 + 1, "attention": 2}  # two layers + embeddings
    types = [n.op_type for n in onnx.load(str(ours)).graph.node]
    assert types.count("LayerNormalization") == 5 and "GlobalAveragePool" not in types
    graph = onnx.load(str(ours)).graph
    read = {name for node in graph.node for name in node.input}
    assert all(weight.name in read for weight in graph.initializer)  # no stale gamma, beta


def test_rewritten_graph_gives_keras_exports_outputs(onnx_files):
    import onnxruntime as ort

    plain, ours, _ = onnx_files
    x = padded_batch()
    want, got = (ort.InferenceSession(str(f)).run(None, x) for f in (plain, ours))
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_rewrites_leave_a_graph_without_their_patterns_as_it_was(onnx_files):
    _, ours, _ = onnx_files
    graph = onnx.load(str(ours))
    before = graph.SerializeToString()
    graph, layer_norms = fuse_layer_norms(graph)
    graph, attention = plain_attention(graph)
    assert (layer_norms, attention) == (0, 0)
    assert [n.op_type for n in graph.graph.node] == [
        n.op_type for n in onnx.load_from_string(before).graph.node
    ]


def test_openvino_reads_them_as_mvn_and_one_attention_per_layer(onnx_files):
    import collections

    import openvino as ov

    def runtime_layers(path):
        model = ov.Core().compile_model(ov.convert_model(str(path)), "CPU",
                                        {"INFERENCE_PRECISION_HINT": "f32"})  # fmt: skip
        ops = model.get_runtime_model().get_ops()
        return collections.Counter(op.get_rt_info()["layerType"].astype(str) for op in ops)

    plain, ours, _ = onnx_files
    before, after = runtime_layers(plain), runtime_layers(ours)
    assert (before["MVN"], before["Subgraph"], before["Softmax"]) == (0, 0, 2)
    # Five layer norms, and each layer's attention one fused kernel, softmax inside.
    assert (after["MVN"], after["Subgraph"], after["Softmax"]) == (5, 2, 0)
    assert after["Reduce"] == before["Reduce"] - 2 * 5  # two means per layer norm gone
