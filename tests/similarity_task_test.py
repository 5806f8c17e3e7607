"""The `similarity` pair task: model wiring, data stream, scenarios, a run, the export."""

import json

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from experiments import sts as sts_cli
from mtl_keras import MultiTaskModel, embedding_model
from mtl_keras.data.pipeline import evaluation_stream, training_stream
from mtl_keras.encoding.preprocessing import FEATURES, PAIR_FEATURES, make_preprocessor
from mtl_keras.errors import InputError
from mtl_keras.export.serving import export_for_serving
from mtl_keras.predict import Predictor
from mtl_keras.saving import load_model, load_tokenizer
from mtl_keras.tasks import resolve_tasks
from mtl_keras.training.scenarios import get_scenario
from tests.conftest import (
    TINY_STSB,
    bert_inputs,
    finished_tiny_run,
    make_tiny_backbone,
    make_tiny_tokenizer,
    tiny_inputs,
)


def pair_inputs():
    x = tiny_inputs()
    x.update({p: x[f][::-1] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)})
    return x


def test_similarity_output_is_the_cosine_of_the_two_embeddings():
    model = MultiTaskModel(make_tiny_backbone(), resolve_tasks("topic,similarity"))
    x = pair_inputs()
    out = model(x, training=False)
    assert out["similarity"].shape == (2, 1) and set(out) == {"topic", "similarity"}
    embed = model.embedding_model()
    a = embed({f: x[f] for f in FEATURES}).numpy()
    b = embed({f: x[p] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)}).numpy()
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(out["similarity"].numpy()[:, 0], cosine, rtol=1e-5)
    inference = model.inference_model()  # per text: no pair inputs, no pair output
    assert set(inference.input) == set(FEATURES) and set(inference.output) == {"embedding", "topic"}


def test_pairs_and_single_texts_form_batches_of_their_own(tiny_data_dir):
    tasks = resolve_tasks("topic,similarity")
    pre = make_preprocessor(make_tiny_tokenizer(), 16)
    stream, steps, sizes = training_stream(
        tasks, pre, batch_size=2, max_length=16, data_dir=tiny_data_dir, seed=3
    )
    assert sizes == {"topic": 7, "similarity": 5}
    kinds, targets = set(), set()
    # The training scores (tests/conftest.py's tiny STS-B) span 0 to 5: targets are score / 5.
    scaled = {round(float(s) / 5.0, 5) for s, _, _ in TINY_STSB["sts-train.csv"]}
    for x, y, w in stream.take(30):
        pair_rows = w["similarity"].numpy() > 0
        assert pair_rows.all() or not pair_rows.any()  # never mixed
        kinds.add(bool(pair_rows[0]))
        second = x["pair_padding_mask"].numpy().sum(axis=1)
        if not pair_rows.any():  # single texts: the second text is [CLS][SEP] alone
            assert (second == 2).all() and x["pair_token_ids"].shape[1] == 2
        else:
            targets |= {round(float(t), 5) for t in y["similarity"].numpy()[:, 0]}
    assert kinds == {True, False}
    assert targets <= scaled and {0.0, 1.0} <= targets  # each pair's score / 5, both ends
    data, counts = evaluation_stream(tasks, "test", pre, batch_size=2, max_length=16,
                                     data_dir=tiny_data_dir)  # fmt: skip
    assert counts == {"topic": 1, "similarity": 4}
    assert sum(int((w["similarity"].numpy() > 0).sum()) for _, _, w in data) == 4


@pytest.mark.parametrize(
    "scenario, tasks, message",
    [
        ("frozen_backbone", "topic,similarity", "trains the encoder, which scenario"),
        ("frozen_head_a", "similarity,topic", "freezes the head of task 'similarity'"),
    ],
)
def test_scenarios_where_pairs_cannot_train_are_refused(scenario, tasks, message):
    with pytest.raises(InputError, match=message):
        get_scenario(scenario, resolve_tasks(tasks))


def test_frozen_all_measures_pairs_without_training():
    assert get_scenario("frozen_all", resolve_tasks("topic,similarity")).name == "frozen_all"


@pytest.fixture(scope="module")
def similarity_run(tiny_preset, tiny_data_dir, tmp_path_factory):
    options = "--tasks topic,similarity --pooling attention --epochs 2"
    return finished_tiny_run(
        tmp_path_factory, tiny_preset, tiny_data_dir, "pairs", options, sts=True
    )


def test_run_reports_pairs_and_the_sts_b_change(similarity_run):
    metrics = json.loads((similarity_run / "metrics.json").read_text())
    assert metrics["test"]["similarity"]["examples"] == 4
    assert {"pearson", "mse"} <= set(metrics["test"]["similarity"])
    sts = metrics["sts_b"]
    assert sts["pairs"] == 4 and sts["split"] == "test"
    assert sts["change"] == pytest.approx(sts["after"] - sts["before"])
    assert metrics["config"]["pooling"] == "attention"


def test_trained_pairs_survive_reload_and_reach_the_serving_embedding(similarity_run, tmp_path):
    model = load_model(similarity_run / "model.keras")
    assert model.pooling_mode == "attention"
    assert np.abs(model.pooling.score.kernel.numpy()).max() > 0  # it learned (starts at 0)
    tokenizer = load_tokenizer(similarity_run / "tokenizer")
    folder = export_for_serving(model, tokenizer, tmp_path / "serving" / "1", max_length=16)
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    texts = ["the quick brown fox", "the team won the match"]
    exported = serve(text=tf.constant(texts))
    assert "similarity_probs" not in exported
    x = bert_inputs(tokenizer, texts)
    expected = model.embedding_model()(x, training=False).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(exported["embedding"].numpy(), expected, atol=1e-5)


def test_predictor_labels_texts_of_a_pair_trained_model(similarity_run):
    predictor = Predictor.from_path(similarity_run / "model.keras", max_length=16)
    (result,) = predictor.predict(["the quick fox"], embeddings=True)
    assert set(result) == {"text", "topic", "embedding"}  # no per-text similarity
    assert len(result["embedding"]) == 16


def test_pairs_alone_train_the_encoder_through_lora_adapters(
    tiny_preset, tiny_data_dir, tmp_path_factory
):
    # (gradual_unfreeze, frozen_lower and llrd with pairs: the study's `similarity` grid)
    options = "--tasks similarity --scenario lora --epochs 2"
    out = finished_tiny_run(tmp_path_factory, tiny_preset, tiny_data_dir, "lora", options)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"similarity"} and metrics["optimizer_iterations"] > 0
    trained = load_model(out / "model.keras").embedding_model()(tiny_inputs(), training=False)
    start = keras_hub.models.BertBackbone.from_preset(str(tiny_preset))
    untrained = embedding_model(start)(tiny_inputs(), training=False)
    assert np.abs(trained.numpy() - untrained.numpy()).max() > 1e-4  # the pair loss moved it


def test_sts_cli_on_the_saved_model_and_preset_repeats_the_runs_figures(
    similarity_run, tiny_preset, tiny_data_dir, capsys
):
    sts = json.loads((similarity_run / "metrics.json").read_text())["sts_b"]
    common = ["--max-length", "16", "--data-dir", str(tiny_data_dir)]
    after = sts_cli.main(["--model", str(similarity_run / "model.keras"), *common])
    before = sts_cli.main(["--preset", str(tiny_preset), *common])
    assert after["spearman"] == pytest.approx(sts["after"], abs=1e-6)
    assert before["spearman"] == pytest.approx(sts["before"], abs=1e-6)
    assert "STS-B test (4 pairs), cosine Spearman x 100" in capsys.readouterr().out
    # The similarity task's own whole-split Spearman is the same figure on the same pairs.
    test = json.loads((similarity_run / "metrics.json").read_text())["test"]["similarity"]
    assert 100 * test["spearman"] == pytest.approx(sts["after"], abs=1e-4)
