"""ONNX and OpenVINO exports: the same rows as the Keras model, served without TensorFlow."""

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import export, predict
from mtl_keras.encoding.preprocessing import make_preprocessor
from mtl_keras.errors import InputError
from mtl_keras.model_card import card_for_model
from mtl_keras.predict import Predictor
from mtl_keras.runtime.predictor import ExportedEncoder, ExportedPredictor
from tests.conftest import FORCED, SENTENCES, cosines

# (format, --quantize) of each export the tests make from `decisive_folder`.
EXPORTS = {
    "onnx": ("onnx", None),
    "onnx-int8": ("onnx", "int8"),
    "openvino": ("openvino", None),
    "openvino-int8": ("openvino", "int8"),
}


@pytest.fixture(scope="module")
def exports(decisive_folder, tiny_data_dir, tmp_path_factory):
    """{name in EXPORTS: folder} of the decisive model: the float32 ONNX one by the command
    line, the others from its ONNX file (converting once); the int8 OpenVINO one calibrated
    on a file of texts (the tiny run has no validation texts)."""
    from mtl_keras.export.cpu import export_for_cpu
    from mtl_keras.saving import load_model, load_tokenizer

    root = tmp_path_factory.mktemp("cpu")
    model_file = decisive_folder / "model.keras"
    folders = {"onnx": export.main(["--format", "onnx", "--model", str(model_file),
                                    "--output", str(root / "onnx")])}  # fmt: skip
    calibration = root / "calibration.txt"
    calibration.write_text("\n".join(SENTENCES[:2] + SENTENCES[3:] + ["stocks rose today"]))
    model = load_model(model_file, compile=False)
    tokenizer = load_tokenizer(decisive_folder / "tokenizer")
    for name, (fmt, quantize) in list(EXPORTS.items())[1:]:
        folders[name] = export_for_cpu(
            model, tokenizer, root / name, fmt, quantize=quantize,
            calibration_file=str(calibration), onnx_source=folders["onnx"] / "model.onnx",
            data_dir=tiny_data_dir,
            card=card_for_model(model, model_file, fmt, root / name),
        )  # fmt: skip
    return folders


def keras_rows(decisive_folder, texts=SENTENCES):
    return Predictor.from_path(decisive_folder / "model.keras").predict(texts, embeddings=True)


@pytest.mark.parametrize("name", ["onnx", "openvino"])
def test_float32_exports_give_the_keras_rows(decisive_folder, exports, name):
    want = keras_rows(decisive_folder)
    got = Predictor.from_path(exports[name]).predict(SENTENCES, embeddings=True)
    assert isinstance(Predictor.from_path(exports[name]), ExportedPredictor)
    for mine, theirs in zip(got, want, strict=True):
        assert mine["text"] == theirs["text"]
        for task in ("topic", "sentiment"):
            assert mine[task]["label"] == theirs[task]["label"]
            for label, p in theirs[task]["probabilities"].items():
                assert mine[task]["probabilities"][label] == pytest.approx(p, abs=1e-4)
        assert mine["ner"] == theirs["ner"]  # words, tags and entity spans with offsets
        assert cosines([mine["embedding"]], [theirs["embedding"]])[0] > 0.99999
    labels = [row["topic"]["label"] for row in got]
    assert len(set(labels)) == len(FORCED["topic"])  # the forced labels differ: a real check
    assert any(row["ner"]["entities"] for row in got)


@pytest.mark.parametrize("name", list(EXPORTS))
def test_the_encoder_of_an_export_is_the_models(decisive_folder, exports, name):
    from mtl_keras import SentenceEncoder

    want = SentenceEncoder.from_path(decisive_folder / "model.keras").encode(SENTENCES)
    encoder = SentenceEncoder.from_path(exports[name])
    assert isinstance(encoder, ExportedEncoder)
    got = encoder.encode(SENTENCES)
    assert got.shape == want.shape and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    floor = 0.99999 if EXPORTS[name][1] is None else 0.9  # tiny random weights, int8
    assert cosines(got, want).min() > floor
    short = encoder.encode(SENTENCES, dimensions=8)  # the first 8 values, re-normalised
    raw = encoder.encode(SENTENCES, normalize=False)[:, :8]
    np.testing.assert_allclose(short, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5)


def test_an_export_records_what_serves_it(exports):
    info = json.loads((exports["openvino-int8"] / "export.json").read_text())
    assert info["format"] == "openvino" and info["quantize"] == "int8"
    assert [t["name"] for t in info["tasks"]] == ["topic", "sentiment", "ner"]
    assert info["tasks"][2]["decoder"] == "word_tags" and info["max_length"] == 16
    quality = info["quality"]  # measured on the tiny run's test split
    assert quality["texts"] > 0 and 0 < quality["cosine_min"] <= quality["cosine_mean"] <= 1
    assert set(quality["tasks"]) == {"topic", "sentiment", "ner"}
    card = (exports["openvino-int8"] / "README.md").read_text()
    assert "## Quality against float32" in card and "Predictor.from_path" in card
    assert sorted(p.name for p in exports["onnx"].iterdir()) == [
        "README.md", "export.json", "model.onnx", "tokenizer.json"]  # fmt: skip
    assert "quality" not in json.loads((exports["onnx"] / "export.json").read_text())


def test_served_without_tensorflow(decisive_folder, exports, tmp_path):
    """A fresh process in which `import tensorflow` fails serves both formats."""
    want = keras_rows(decisive_folder)
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["tensorflow"] = None  # as if TensorFlow were not installed
        from mtl_keras import Predictor, SentenceEncoder
        rows = {{}}
        for name in ("onnx", "openvino"):
            folder = {str(exports["onnx"].parent)!r} + "/" + name
            rows[name] = Predictor.from_path(folder).predict({SENTENCES!r})
            SentenceEncoder.from_path(folder).encode(["a text"])
        assert not [m for m in sys.modules if m.startswith(("tensorflow.", "keras_hub"))]
        print(json.dumps(rows))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for rows in json.loads(result.stdout.splitlines()[-1]).values():
        assert [r["topic"]["label"] for r in rows] == [r["topic"]["label"] for r in want]
        assert [r["ner"]["tags"] for r in rows] == [r["ner"]["tags"] for r in want]


def test_predict_cli_reads_an_export_folder(decisive_folder, exports, tmp_path):
    out = tmp_path / "out.jsonl"
    predict.main(["--model", str(exports["onnx"]), "--output", str(out), *SENTENCES[:2]])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["topic"]["label"] for r in rows] == [
        r["topic"]["label"] for r in keras_rows(decisive_folder, SENTENCES[:2])]  # fmt: skip


@pytest.mark.parametrize(
    "options, message",
    [
        (["--format", "onnx", "--quantize", "int8-weights"], "not made for onnx"),
        (["--format", "onnx", "--precision", "bf16"], "OpenVINO's"),
        (["--format", "tf-serving", "--calibration", "x.txt"], "--format openvino"),
        (["--format", "keras-hub", "--quantize", "int8"], "tf-serving, onnx or openvino, not"),
    ],
)
def test_impossible_combinations_are_one_line_errors(decisive_folder, tmp_path, options, message):
    argv = ["--model", str(decisive_folder / "model.keras"), "--output", str(tmp_path / "x")]
    with pytest.raises(InputError, match=message) as info:
        export.main([*argv, *options])
    assert "\n" not in str(info.value) and not (tmp_path / "x").exists()


def test_a_folder_that_is_not_an_export_is_named(tmp_path):
    with pytest.raises(InputError, match="not an ONNX or OpenVINO export"):
        ExportedPredictor.from_path(tmp_path)


@pytest.mark.slow
def test_the_fast_tokenizer_gives_keras_hubs_pieces_on_real_text():
    """Ids of whole texts (sentence heads) and of words with their first pieces (token
    heads) equal the keras-hub preprocessor's on real BBC articles, tweets and WNUT-16."""
    from benchmarks.common import real_sentences
    from mtl_keras.data import load
    from mtl_keras.encoding import presets
    from mtl_keras.runtime.tokenizer import bert_tokenizer, text_features, word_features

    keras_tokenizer = presets.load_tokenizer(presets.default_preset_dir())
    fast = bert_tokenizer(keras_tokenizer.get_vocabulary())
    fast.enable_truncation(128)
    texts = real_sentences(1000)
    mine = text_features(fast, texts)
    theirs = Predictor._features(SimpleNamespace(
        labels_words=False, preprocessor=make_preprocessor(keras_tokenizer, 128)), texts, None)[0]  # fmt: skip
    width = mine["token_ids"].shape[1]
    assert np.array_equal(mine["token_ids"], theirs["token_ids"][:, :width])
    tweets = [" ".join(w.decode() for w in row["tokens"])
              for row in load("wnut16", "test").take(200).as_numpy_iterator()]  # fmt: skip
    words = [tweet.split() for tweet in tweets]
    mine, counts = word_features(fast, words)
    keras_side = SimpleNamespace(labels_words=True, tokenizer=keras_tokenizer, max_length=128)
    theirs, keras_counts = Predictor._features(
        keras_side, tweets, [[(w, 0, 0) for w in ws] for ws in words]
    )
    width = mine["token_ids"].shape[1]
    for key in ("token_ids", "first_piece"):
        assert np.array_equal(mine[key], theirs[key][:, :width]), key
    for a, b in zip(counts, keras_counts, strict=True):
        assert np.array_equal(a > 0, b > 0)


def test_onnx_int8_scales_each_output_channel(exports):
    """Per output channel, not per tensor: one scale for a whole matrix lost quality on
    real text (min cosine 0.885 against 0.985). Every quantized product's weight has one
    scale per output column."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(exports["onnx-int8"] / "model.onnx")).graph
    scales = {
        i.name: numpy_helper.to_array(i) for i in graph.initializer if i.name.endswith("_scale")
    }
    products = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert products
    for node in products:
        scale = scales[node.input[1].removesuffix("_quantized") + "_scale"]
        assert scale.ndim == 1 and scale.size > 1, node.name
