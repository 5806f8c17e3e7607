"""Matryoshka training: the widths asked for, the output and loss at each width against
hand-computed values, the full-width metrics, and a run that reports every width."""

import keras
import numpy as np
import pytest

from mtl_keras import RunConfig
from mtl_keras.encoding.preprocessing import FEATURES, PAIR_FEATURES
from mtl_keras.errors import InputError
from mtl_keras.evaluation.metrics import Correlation, InBatchNegativesLoss
from mtl_keras.evaluation.widths import width_metrics
from mtl_keras.model.matryoshka import FullWidth, MatryoshkaLoss, widths, with_widths
from mtl_keras.model.multitask import MultiTaskModel
from mtl_keras.tasks import TASKS, Task, from_files
from tests.conftest import make_tiny_backbone, tiny_inputs

PAIR = Task("sts", None, "pair", (), score_range=(0.0, 5.0))
CLOSE = Task("close", None, "contrastive", ())


def test_widths_widest_first_with_the_full_width_always_trained():
    assert widths([64, 256, 128], [], [PAIR], hidden=384) == (
        (384, 256, 128, 64), (1.0, 1.0, 1.0, 1.0))  # fmt: skip
    assert widths([384, 64], [2, 0.5], [PAIR], hidden=384) == ((384, 64), (2.0, 0.5))
    assert widths([], [], [TASKS["topic"]], hidden=384) == ((), ())
    tasks = with_widths([TASKS["topic"], CLOSE], [8], [], hidden=16)
    assert tasks[0] == TASKS["topic"]  # a head on the embedding trains at full width
    assert (tasks[1].matryoshka_dims, tasks[1].matryoshka_weights) == ((16, 8), (1.0, 1.0))
    assert Task.from_config(tasks[1].get_config()) == tasks[1]


@pytest.mark.parametrize(
    ("dims", "weights", "tasks", "message"),
    [
        ([512], [], [PAIR], "wider than the embedding (384 values)"),
        ([128, 128], [], [PAIR], "repeats a width"),
        ([0], [], [PAIR], "whole number >= 1"),
        ([128, 64], [1.0], [PAIR], "gives 1 weights for 2 widths"),
        ([128], [-1.0], [PAIR], "finite, >= 0"),
        ([], [1.0], [PAIR], "needs --matryoshka-dims"),
        ([128], [], [TASKS["topic"]], "this run has none (its tasks: topic)"),
    ],
)
def test_bad_widths_are_one_line_errors(dims, weights, tasks, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        widths(dims, weights, tasks, hidden=384)


def test_run_config_reads_widths_from_the_command_line_text():
    config = RunConfig(tasks=["topic", PAIR], matryoshka_dims="256, 64",
                       matryoshka_weights="1,0.5")  # fmt: skip
    assert config.matryoshka_dims == (256, 64) and config.matryoshka_weights == (1.0, 0.5)
    with pytest.raises(InputError, match="--matryoshka-dims '256,x': give whole numbers"):
        RunConfig(tasks=[PAIR], matryoshka_dims="256,x")
    with pytest.raises(InputError, match="this run has none"):
        RunConfig(tasks=["topic"], matryoshka_dims="64")


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def model_and_embeddings(task):
    keras.utils.set_random_seed(1)
    model = MultiTaskModel(make_tiny_backbone(dropout=0.0), [task], dropout=0.0)
    x = tiny_inputs()
    x.update({p: x[f][::-1] for f, p in zip(FEATURES, PAIR_FEATURES, strict=True)})
    embed = model.embedding_model()
    u = np.asarray(embed({f: x[f] for f in FEATURES}, training=False))
    v = np.asarray(embed({f: x[f][::-1] for f in FEATURES}, training=False))
    return np.asarray(model(x, training=False)[task.name]), u, v


def test_contrastive_output_holds_the_scores_of_the_cut_embeddings_at_each_width():
    task = Task("close", None, "contrastive", (), matryoshka_dims=(16, 8, 3),
                matryoshka_weights=(1.0, 1.0, 1.0))  # fmt: skip
    scores, u, v = model_and_embeddings(task)
    assert scores.shape == (2, 3, 2)
    for i, width in enumerate((16, 8, 3)):  # cut first, then normalised again
        want = 20.0 * unit(u[:, :width]) @ unit(v[:, :width]).T
        np.testing.assert_allclose(scores[:, i], want, rtol=1e-4, atol=1e-4)
    assert np.abs(scores[:, 0] - scores[:, 2]).max() > 1e-3  # the widths differ


def test_pair_output_holds_the_cosine_at_each_width():
    task = Task("sts", None, "pair", (), score_range=(0.0, 5.0), matryoshka_dims=(16, 4),
                matryoshka_weights=(1.0, 1.0))  # fmt: skip
    scores, u, v = model_and_embeddings(task)
    assert scores.shape == (2, 2, 1)
    for i, width in enumerate((16, 4)):
        want = np.sum(unit(u[:, :width]) * unit(v[:, :width]), axis=1)
        np.testing.assert_allclose(scores[:, i, 0], want, rtol=1e-4, atol=1e-5)


def test_loss_is_the_weighted_sum_of_the_kind_loss_at_each_width():
    """Per example: 1 x MSE at full width + 0.5 x MSE at the narrow width (pairs), and the
    same sum of in-batch cross-entropies (contrastive)."""
    y_true = np.array([[0.2], [0.9]], "float32")
    y_pred = np.array([[[0.5], [0.1]], [[0.7], [1.0]]], "float32")  # (batch, widths, 1)
    loss = MatryoshkaLoss(keras.losses.MeanSquaredError(), [1.0, 0.5])
    want = (y_pred[:, 0, 0] - y_true[:, 0]) ** 2 + 0.5 * (y_pred[:, 1, 0] - y_true[:, 0]) ** 2
    np.testing.assert_allclose(np.asarray(loss.call(y_true, y_pred)), want, rtol=1e-6)
    assert float(loss(y_true, y_pred)) == pytest.approx(want.mean(), rel=1e-6)

    scores = np.array([[[5.0, 1.0], [1.0, 2.0]], [[2.0, 3.0], [0.0, 4.0]]], "float32")
    marks = np.ones((2, 1), "float32")
    contrastive = MatryoshkaLoss(InBatchNegativesLoss(), [1.0, 0.25])
    per_width = [np.log(np.exp(scores[:, w]).sum(1)) - np.diag(scores[:, w]) for w in (0, 1)]
    np.testing.assert_allclose(np.asarray(contrastive.call(marks, scores)),
                               per_width[0] + 0.25 * per_width[1], rtol=1e-5)  # fmt: skip
    config = contrastive.get_config()
    assert MatryoshkaLoss.from_config(config).weights == [1.0, 0.25]


def test_full_width_metric_reads_the_first_width_only():
    y_true = np.array([[0.1], [0.5], [0.9]], "float32")
    y_pred = np.stack([y_true, -y_true], axis=1)  # full width perfect, the other reversed
    metric = FullWidth(Correlation())
    metric.update_state(y_true, y_pred)
    assert metric.name == "pearson" and float(metric.result()) == pytest.approx(1.0, abs=1e-6)
    assert len(metric.variables) == len(Correlation().variables) > 0  # tracked (JAX fits)
    metric.reset_state()
    metric.update_state(y_true, y_pred[:, ::-1])
    assert float(metric.result()) == pytest.approx(-1.0, abs=1e-6)


def test_width_metrics_cut_each_text_once_embedded():
    calls = []
    vectors = {"a": [0.6, 0.8, 0.0], "b": [0.0, 0.6, 0.8]}

    def encode(texts):
        calls.append(list(texts))
        return np.array([vectors[t] for t in texts], "float32")

    def cosine(encode):
        a, b = encode(["a", "b"])
        return float(a @ b)

    got = width_metrics(encode, [3, 2, 1], {"cosine": cosine})
    assert got["3"]["cosine"] == pytest.approx(0.48)
    assert got["2"]["cosine"] == pytest.approx(0.8)  # (0.6, 0.8) . (0, 1)
    assert got["1"]["cosine"] == pytest.approx(0.0)  # (1,) . (0,): norm guarded
    assert calls == [["a", "b"]]


def test_a_matryoshka_run_reports_every_width_and_reloads(tiny_preset, tiny_data_dir, tmp_path):
    """A tiny run of a contrastive and a pair task at widths 16 (full), 8 and 4: metrics.json
    and the card report each width; width 4's retrieval recomputes from the saved model."""
    from experiments import run
    from mtl_keras import SentenceEncoder
    from mtl_keras.data.examples import task_options, write_example_files
    from mtl_keras.evaluation.metrics import retrieval_metrics
    from mtl_keras.saving import load_model
    from tests.conftest import tiny_run_argv

    paths = write_example_files(tmp_path / "data")
    options = [*task_options("close", paths["close"]), *task_options("sts", paths["sts"])]
    argv = tiny_run_argv(tiny_preset, tiny_data_dir, tmp_path / "run", *options, "--epochs",
                         "1", "--train-examples", "close=32,sts=32", "--max-eval-examples",
                         "30", "--matryoshka-dims", "8,4", sts=True)  # fmt: skip
    metrics = run.main(argv)
    widths_found = metrics["test_matryoshka"]
    assert list(widths_found) == ["16", "8", "4"]
    for figures in widths_found.values():
        assert set(figures) == {"close", "sts", "stsb_spearman"}
        assert 0 < figures["close"]["recall_at_1"] <= figures["close"]["mrr"] <= 1
    assert widths_found["4"] != widths_found["16"]  # each width is measured on its own
    model = load_model(tmp_path / "run" / "model.keras")
    assert [t.matryoshka_dims for t in model.tasks] == [(16, 8, 4), (16, 8, 4)]
    # Width 4 again, from the saved model and the test file read anew (the tiny vocabulary
    # gives ties, so texts are embedded as the run did: anchors, then positives, by 4).
    encoder = SentenceEncoder.from_path(tmp_path / "run" / "model.keras")
    test = list(from_files("close", paths["close"]).examples("test").take(30).as_numpy_iterator())
    anchors, positives = ([r[k].decode() for r in test] for k in ("anchor", "positive"))
    again = width_metrics(
        lambda texts: encoder.encode(texts, batch_size=4),
        [4],
        {"close": lambda encode: retrieval_metrics(encode(anchors), encode(positives))},
    )
    assert again["4"]["close"] == pytest.approx(widths_found["4"]["close"], abs=1e-6)
    card = (tmp_path / "run" / "README.md").read_text()
    assert "| 4 |" in card and "Matryoshka" in card
