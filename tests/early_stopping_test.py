"""Early stopping keeps the best epoch's weights, and the run reports that epoch."""

import json

import pytest

from mtl_keras.data.pipeline import evaluation_stream
from mtl_keras.model import compile_model
from mtl_keras.preprocessing import make_preprocessor
from mtl_keras.saving import load_model, load_tokenizer
from tests.conftest import finished_tiny_run


@pytest.fixture(scope="module")
def stopped_run(tiny_preset, tiny_data_dir, tmp_path_factory):
    # The tiny data has validation pairs only: the score is the validation Pearson r.
    options = "--tasks similarity --epochs 6 --patience 1 --learning-rate 3e-3 --no-sts"
    return finished_tiny_run(tmp_path_factory, tiny_preset, tiny_data_dir, "stopped", options)


def test_run_keeps_the_best_epoch_and_reports_its_validation(stopped_run, tiny_data_dir):
    metrics = json.loads((stopped_run / "metrics.json").read_text())
    scores = {int(row["epoch"]): float(row["val_score"]) for row in _history(stopped_run)}
    best = metrics["best_epoch"]
    assert scores[best] == max(scores.values())
    assert len(scores) in (best + 2, 6)  # patience 1: one epoch without a better score
    reported = metrics["validation"]["similarity"]["pearson"]
    assert reported == pytest.approx(scores[best])  # one task: the score is its r
    # The saved model is the best epoch's: evaluating it again gives that epoch's r.
    model = load_model(stopped_run / "model.keras", compile=False)
    compile_model(model, "adam")
    pre = make_preprocessor(load_tokenizer(stopped_run / "tokenizer"), 16)
    data, _ = evaluation_stream(model.tasks, "validation", pre, batch_size=4, max_length=16,
                                data_dir=tiny_data_dir)  # fmt: skip
    again = model.evaluate(data, return_dict=True, verbose=0)
    assert again["pearson"] == pytest.approx(scores[best], abs=1e-5)


def _history(folder):
    import csv

    with open(folder / "history.csv") as handle:
        return list(csv.DictReader(handle))
