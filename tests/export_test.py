"""TF Serving export: raw-string signature, servable with only TF + TF Text."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from experiments import export, serving_client
from mtl_keras.encoding.preprocessing import make_preprocessor, trim_padding
from mtl_keras.errors import InputError
from mtl_keras.saving import load_model, load_tokenizer
from mtl_keras.tasks import TASKS
from tests.conftest import FORCED, SENTENCES


def run_isolated(code):
    """Run `code` in a fresh interpreter; return its stdout (fails the test on error)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def keras_reference(tiny_run, sentences):
    model = load_model(tiny_run / "model.keras", compile=False).inference_model()
    preprocessor = make_preprocessor(load_tokenizer(tiny_run / "tokenizer"), 16)
    out = model(trim_padding(preprocessor(tf.constant(sentences))), training=False)
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def decisive_run(decisive_folder, tmp_path_factory):
    """`decisive_folder`'s model exported at its default length: (run folder, export)."""
    version = tmp_path_factory.mktemp("decisive") / "serving" / "1"  # the trained length
    export.main(["--model", str(decisive_folder / "model.keras"), "--output", str(version)])
    return decisive_folder, version


def test_signature_served_with_only_tf_and_tf_text_matches_keras(decisive_run, tmp_path):
    run, exported = decisive_run
    run_isolated(f"""
        import sys, numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
        serve = tf.saved_model.load({str(exported)!r}).signatures["serving_default"]
        out = serve(text=tf.constant({SENTENCES!r}))
        assert "keras_hub" not in sys.modules and "mtl_keras" not in sys.modules, "imported too much"
        np.savez({str(tmp_path / "served.npz")!r}, **{{k: v.numpy() for k, v in out.items()}})
    """)
    served = np.load(tmp_path / "served.npz", allow_pickle=True)
    reference = keras_reference(run, SENTENCES)
    embedding = reference["embedding"] / np.linalg.norm(
        reference["embedding"], axis=1, keepdims=True
    )
    np.testing.assert_allclose(served["embedding"], embedding, atol=1e-5)
    for task, labels in (("topic", 5), ("sentiment", 3)):
        probs = tf.nn.softmax(reference[task]).numpy()
        np.testing.assert_allclose(served[f"{task}_probs"], probs, atol=1e-5)
        assert served[f"{task}_probs"].shape == (len(SENTENCES), labels)
        # The label is the Keras model's argmax, named with the task's own labels.
        want = [TASKS[task].labels[i] for i in np.argmax(reference[task], axis=-1)]
        assert [label.decode() for label in served[f"{task}_label"]] == want
        assert want == [TASKS[task].labels[i] for i in FORCED[task]]  # the labels differ
    pieces = served["word_pieces"]
    assert [p.decode() for p in pieces[1] if p] == ["[CLS]", "a", "[SEP]"]
    # NER: each real word piece tagged with the Keras argmax; [CLS], [SEP] and padding "".
    tags = np.array(TASKS["ner"].labels, dtype=object)[np.argmax(reference["ner"], axis=-1)]
    mask = np.array([[p not in (b"", b"[CLS]", b"[SEP]") for p in row] for row in pieces])
    assert served["ner_tags"].shape == reference["ner"].shape[:2] == mask.shape
    want_tags = np.where(mask, tags, "")
    assert [[t.decode() for t in row] for row in served["ner_tags"]] == want_tags.tolist()
    assert mask[1].tolist()[:3] == [False, True, False] and mask.sum() > len(SENTENCES)
    assert len(set(want_tags[mask])) > 1  # the tags differ


def test_every_op_is_core_tensorflow_or_tf_text(tiny_export):
    out = run_isolated(f"""
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow.python.framework import op_def_registry
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString(open({str(tiny_export / "saved_model.pb")!r}, "rb").read())
        graph = proto.meta_graphs[0].graph_def
        ops = {{n.op for n in graph.node}}
        for function in graph.library.function:
            ops |= {{n.op for n in function.node_def}}
        ops -= {{f.signature.name for f in graph.library.function}}  # calls of graph functions
        missing = sorted(op for op in ops if op_def_registry.get(op) is None)
        import tensorflow_text  # noqa: F401
        still_missing = sorted(op for op in missing if op_def_registry.get(op) is None)
        print(len(ops), ",".join(missing), "|", ",".join(still_missing))
    """)
    count, rest = out.strip().split(" ", 1)
    text_ops, unknown = rest.split("|")
    assert int(count) > 20
    assert (
        "FastWordpieceTokenizeWithOffsets" in text_ops or "WordpieceTokenizeWithOffsets" in text_ops
    )
    assert unknown.strip() == ""  # nothing beyond core TF + TF Text


def test_saved_model_cli_shows_the_signature(tiny_export):
    cli = Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run(
        [
            str(cli),
            "show",
            "--dir",
            str(tiny_export),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "inputs['text'] tensor_info:" in out and "DT_STRING" in out and "shape: (-1)" in out
    for name in (
        "embedding",
        "topic_probs",
        "topic_label",
        "sentiment_label",
        "ner_tags",
        "word_pieces",
    ):
        assert f"outputs['{name}']" in out


def test_client_requests_fit_the_signature(tiny_export):
    serve = tf.saved_model.load(str(tiny_export)).signatures["serving_default"]
    direct = serve(text=tf.constant(SENTENCES))["topic_probs"].numpy()
    row = json.loads(json.dumps(serving_client.rest_row_body(SENTENCES)))
    columnar = json.loads(json.dumps(serving_client.rest_columnar_body(SENTENCES)))
    assert row["instances"] == columnar["inputs"]["text"] == SENTENCES
    request = serving_client.grpc_request(SENTENCES, "mtl")
    assert (
        request.model_spec.name == "mtl" and request.model_spec.signature_name == "serving_default"
    )
    from_grpc = tf.make_ndarray(request.inputs["text"])
    np.testing.assert_allclose(serve(text=tf.constant(from_grpc))["topic_probs"].numpy(), direct)


def test_default_length_is_the_trained_length(decisive_run):
    serve = tf.saved_model.load(str(decisive_run[1])).signatures["serving_default"]
    pieces = serve(text=tf.constant([" ".join(["the quick fox"] * 20)]))["word_pieces"]
    assert pieces.shape == (1, 16)  # the run trained at 16 word pieces, not 128


def test_refuses_to_overwrite_and_needs_a_version_dir(tiny_run, tiny_export, tmp_path):
    model = str(tiny_run / "model.keras")
    exported = shutil.copytree(tiny_export, tmp_path / "copy" / "1")  # the shared one stays
    with pytest.raises(InputError, match="--overwrite"):
        export.main(["--model", model, "--output", str(exported)])
    with pytest.raises(InputError, match="version number"):
        export.main(["--model", model, "--output", str(tmp_path / "mtl")])
    before = (exported / "saved_model.pb").stat().st_mtime_ns
    export.main(["--model", model, "--output", str(exported), "--overwrite", "--max-length", "16"])
    assert (exported / "saved_model.pb").stat().st_mtime_ns != before
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.slow
def test_exported_pretrained_embedding_matches_sentence_transformers(tmp_path):
    from mtl_keras.encoding import presets
    from mtl_keras.export.serving import export_for_serving
    from mtl_keras.model.backbone import TunableBertBackbone
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.tasks import resolve_tasks
    from tests.conftest import cosines
    from tests.minilm_parity_test import REFERENCE

    preset = presets.default_preset_dir()
    backbone = TunableBertBackbone.from_backbone(presets.load_backbone(preset))
    backbone.inference_mode = True
    model = MultiTaskModel(backbone, resolve_tasks("topic"))
    out = export_for_serving(model, presets.load_tokenizer(preset), tmp_path / "mtl" / "1")
    cases = [c for c in REFERENCE["cases"] if c["max_length"] == 128]
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    got = serve(text=tf.constant([c["text"] for c in cases]))["embedding"].numpy()
    want = np.array([c["embedding"] for c in cases], dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # served unit length
    cosine = cosines(got, want)
    assert cosine.min() >= 0.9999, cosine
