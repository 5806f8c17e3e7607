"""The int8 CPU exports' quality on real weights and real text, against float32."""

import numpy as np
import pytest

from mtl_keras.export.cpu import export_cpu, write_onnx
from mtl_keras.export.cpu_quality import quality_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_model():
    """The pretrained all-MiniLM-L6-v2 with a topic head fitted in closed form (ridge
    regression on the embeddings of 300 BBC training articles): a real encoder and a head
    whose margins are those of a trained one, without a training run."""
    from mtl_keras.data import load
    from mtl_keras.encoding import presets
    from mtl_keras.encoding.encoder import SentenceEncoder
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.tasks import TASKS

    preset = presets.default_preset_dir()
    tokenizer = presets.load_tokenizer(preset)
    model = MultiTaskModel(presets.load_backbone(preset), [TASKS["topic"]], max_length=64)
    rows = list(load("bbc_news", "train").take(300).as_numpy_iterator())
    embedding = SentenceEncoder.from_model(model, tokenizer, 64).encode(
        [r["text"].decode() for r in rows], normalize=False)  # fmt: skip
    targets = np.eye(5)[[int(r["label"]) for r in rows]] * 2 - 1
    features = np.hstack([embedding, np.ones((len(rows), 1))])
    weights = np.linalg.solve(
        features.T @ features + np.eye(features.shape[1]), features.T @ targets
    )
    model.head_denses["topic"].set_weights([weights[:-1] * 5, weights[-1] * 5])
    return model, tokenizer


def test_int8_exports_stay_close_to_float32_on_real_text(real_model, tmp_path):
    from benchmarks.common import real_sentences
    from mtl_keras.data import load

    model, tokenizer = real_model
    onnx_file = tmp_path / "float.onnx"
    write_onnx(model, onnx_file)
    texts = real_sentences(150)  # BBC articles and tweets
    rows = list(load("bbc_news", "test").take(100).as_numpy_iterator())
    topic = ([r["text"].decode() for r in rows], [{"label": TOPICS[int(r["label"])]} for r in rows])
    for fmt in ("onnx", "openvino"):
        folder, _ = export_cpu(model, tokenizer, tmp_path / fmt, fmt, quantize="int8",
                               calibration=texts[::2], onnx_source=onnx_file)  # fmt: skip
        report = quality_report(model, tokenizer, folder, texts, {"topic": topic})
        assert report["cosine_mean"] >= 0.995 and report["cosine_min"] >= 0.97, (fmt, report)
        task = report["tasks"]["topic"]
        assert task["agreement"] >= 0.98, (fmt, task)
        assert task["export"] >= task["float32"] - 1.01 / task["examples"], (fmt, task)  # one
        assert task["float32"] > 0.9  # a head worth comparing against


TOPICS = ["business", "entertainment", "politics", "sport", "tech"]
