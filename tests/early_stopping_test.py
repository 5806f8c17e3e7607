"""Early stopping stops `patience` epochs after the best one and keeps that epoch's weights."""

import csv
import json

import keras
import numpy as np
import pytest

from mtl_keras.data import get_builder
from mtl_keras.data.pipeline import evaluation_stream
from mtl_keras.encoding.preprocessing import make_preprocessor
from mtl_keras.model.multitask import compile_model
from mtl_keras.saving import load_model, load_tokenizer
from mtl_keras.training import trainer
from mtl_keras.training.callbacks import weights_file
from tests.conftest import finished_tiny_run, run_tiny, write_tiny_stsb

EPOCHS, PATIENCE = 12, 2
PAIRS = [  # (score, sentence1, sentence2): near copies score high, unrelated texts low
    (5.0, "the quick brown fox", "the quick fox"),
    (0.0, "stocks fell", "the lazy dog"),
    (4.5, "the team won the match", "the team won"),
    (0.5, "a new phone chip", "the film star"),
    (4.0, "the market fell", "stocks fell ."),
    (1.0, "sport team won", "the new phone"),
]


@pytest.fixture(scope="module")
def misleading_data(tmp_path_factory):
    """STS-B files whose training split scores the pairs the other way round (near copies
    low): the encoder starts out agreeing with the validation scores, and every epoch of
    training takes it further from them, so the validation score peaks at once."""
    root = tmp_path_factory.mktemp("misleading")
    folder = write_tiny_stsb(root / "stsb")
    rows = {
        "sts-train.csv": [(5.0 - score, a, b) for score, a, b in PAIRS],
        "sts-dev.csv": PAIRS,
        "sts-test.csv": PAIRS,
    }
    for name, pairs in rows.items():
        lines = [f"main-captions\tMSRvid\t2012\t{i:04d}\t{score}\t{a}\t{b}"
                 for i, (score, a, b) in enumerate(pairs)]  # fmt: skip
        (folder / name).write_text("\n".join(lines) + "\n")
    get_builder("stsb", root / "prepared", source=folder)
    return root / "prepared"


# Gradual unfreezing, so that one run also shows the count spanning stages: the first stage
# (epoch 0) trains no layer of the pair task, so its score is the start's, the best; each
# later epoch unfreezes one more layer and the score falls. The validation score is the
# validation Pearson r of the one task.
OPTIONS = (f"--tasks similarity --scenario gradual_unfreeze --unfreeze-every 1 --epochs {EPOCHS} "
           f"--patience {PATIENCE} --learning-rate 1e-3 --batch-size 2 --no-length-buckets")  # fmt: skip


@pytest.fixture(scope="module")
def stopped_run(tiny_preset, misleading_data, tmp_path_factory):
    return finished_tiny_run(tmp_path_factory, tiny_preset, misleading_data, "stopped", OPTIONS)


def test_training_stops_patience_epochs_after_the_best(stopped_run):
    metrics = json.loads((stopped_run / "metrics.json").read_text())
    scores = _scores(stopped_run)
    best = metrics["best_epoch"]
    assert scores[best] == max(scores.values())
    assert best + 1 + PATIENCE < EPOCHS  # it stopped early ...
    assert sorted(scores) == list(range(best + 1 + PATIENCE))  # ... right after `patience`
    assert all(scores[e] < scores[best] for e in range(best + 1, best + 1 + PATIENCE))
    assert len(metrics["epoch_seconds"]) == best + 1 + PATIENCE


def test_the_saved_model_is_the_best_epochs(stopped_run, misleading_data):
    metrics = json.loads((stopped_run / "metrics.json").read_text())
    scores, best = _scores(stopped_run), metrics["best_epoch"]
    reported = metrics["validation"]["similarity"]["pearson"]
    assert reported == pytest.approx(scores[best])  # one task: the score is its r
    # Evaluating the saved model again gives the best epoch's r, not the last epoch's.
    model = load_model(stopped_run / "model.keras", compile=False)
    compile_model(model, "adam")
    pre = make_preprocessor(load_tokenizer(stopped_run / "tokenizer"), 16)
    data, _ = evaluation_stream(model.tasks, "validation", pre, batch_size=4, max_length=16,
                                data_dir=misleading_data)  # fmt: skip
    again = model.evaluate(data, return_dict=True, verbose=0)["pearson"]
    assert again == pytest.approx(scores[best], abs=1e-5)
    assert abs(again - scores[max(scores)]) > 1e-3  # the last epoch's weights were not kept


def _scores(folder):
    with open(folder / "history.csv") as handle:
        return {int(row["epoch"]): float(row["val_score"]) for row in csv.DictReader(handle)}


class StopAfterEpoch(keras.callbacks.Callback):
    """Interrupts a run once `epoch` is checkpointed, as a kill would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_patience_spans_the_stages_of_gradual_unfreezing_and_a_resume(
    stopped_run, tiny_preset, misleading_data, tmp_path, monkeypatch
):
    whole, scores = json.loads((stopped_run / "metrics.json").read_text()), _scores(stopped_run)
    # One count over the run (Keras' own restarts at every `fit`, so at every stage): the
    # stages after the first lower the score, and the second epoch after the best, in the
    # third stage, ends the run; the model kept is the first stage's.
    assert whole["best_epoch"] == 0 and sorted(scores) == list(range(1 + PATIENCE))
    assert [s["epochs"] for s in whole["stages"]] == [[0, 1], [1, 2], [2, 3]]  # then no more

    # Interrupted after epoch 1 (one epoch without a better score, the best in epoch 0's
    # file), then resumed: the same run, whose count and best weights came back.
    callbacks = trainer.MultiTaskTrainer.callbacks
    monkeypatch.setattr(trainer.MultiTaskTrainer, "callbacks",
                        lambda self, *a: [*callbacks(self, *a), StopAfterEpoch(1)])  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_tiny(tiny_preset, misleading_data, tmp_path / "resumed", OPTIONS)
    monkeypatch.undo()
    kept = sorted(p.name for p in (tmp_path / "resumed" / "checkpoint").glob("epoch-*"))
    assert kept == [weights_file(0), weights_file(1)]
    resumed = run_tiny(tiny_preset, misleading_data, tmp_path / "resumed", OPTIONS)
    assert _scores(tmp_path / "resumed") == scores and resumed["best_epoch"] == 0
    assert resumed["validation"] == whole["validation"] and resumed["test"] == whole["test"]
    for a, b in zip(*(load_model(run / "model.keras").get_weights()
                      for run in (stopped_run, tmp_path / "resumed")), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
