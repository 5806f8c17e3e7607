"""Model cards: a README.md in every run and export folder, filled from the run's files."""

import csv
import json
import shutil

import keras

from experiments import export
from mtl_keras.model_card import model_card
from mtl_keras.tasks import run_tasks


def section(card, title):
    """The text of one `## title` section of a card."""
    return card.split(f"## {title}\n\n", 1)[1].split("\n## ", 1)[0]


def metric_rows(card):
    """{(task, metric): (validation, test)} of a card's metrics table."""
    rows = {}
    for line in section(card, "Metrics").splitlines()[2:]:
        task, name, validation, test = (cell.strip() for cell in line.strip("|").split("|"))
        rows[task, name] = (validation, test)
    return rows


def test_a_run_folder_carries_its_card(tiny_run):
    card = (tiny_run / "README.md").read_text()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    with open(tiny_run / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    # The tasks, with their kinds, labels and examples per split.
    tasks = section(card, "Tasks")
    for task in run_tasks(metrics):
        row = next(line for line in tasks.splitlines() if line.startswith(f"| {task.name} |"))
        assert f"| {task.kind} |" in row and ", ".join(task.labels) in row
        test_examples = metrics["test"][task.name]["examples"]
        assert f"| {metrics['train_examples'][task.name]} |" in row
        assert f"| {test_examples} |" in row
    # Every test metric, to four decimals, as the run printed it.
    rows = metric_rows(card)
    for task, values in metrics["test"].items():
        for name, value in values.items():
            if name != "examples":
                assert rows[task, name][1] == f"{value:.4f}", (task, name)
                validation = metrics["validation"][task].get(name)  # none: an empty split
                assert rows[task, name][0] == ("" if validation is None else f"{validation:.4f}")
    log = section(card, "Training log").splitlines()[2:]
    assert len(log) == len(history) and log[0].startswith("| 1 | ")
    assert f"{float(history[0]['loss']):.4f}" in log[0]
    usage = section(card, "Usage")
    assert f"{tiny_run}/model.keras" in usage and "Predictor.from_path" in usage
    environment = section(card, "Environment")
    assert f"keras {keras.__version__}" in environment
    assert metrics["commit"] is None or metrics["commit"] in environment
    assert "uncertainty" in section(card, "Training")  # a non-default option is listed
    assert "STS-B" not in card  # the tiny run did not measure it: no empty section


def test_every_export_folder_carries_the_runs_card(tiny_run, tiny_export, tmp_path):
    run_rows = metric_rows((tiny_run / "README.md").read_text())
    served = (tiny_export / "README.md").read_text()
    assert metric_rows(served) == run_rows and "tensorflow/serving" in section(served, "Usage")
    for fmt, usage in (("sentence-transformers", "SentenceTransformer("),
                       ("keras-hub", "BertBackbone.from_preset(")):  # fmt: skip
        out = tmp_path / fmt
        export.main(["--format", fmt, "--model", str(tiny_run / "model.keras"), "--output",
                     str(out)])  # fmt: skip
        card = (out / "README.md").read_text()
        assert metric_rows(card) == run_rows, fmt
        assert usage in section(card, "Usage") and str(out) in section(card, "Usage")


def test_a_model_without_its_run_files_gets_a_card_that_says_so(tiny_run, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tiny_run / "model.keras", alone / "model.keras")
    shutil.copytree(tiny_run / "tokenizer", alone / "tokenizer")
    out = tmp_path / "st"
    export.main(["--format", "sentence-transformers", "--model", str(alone / "model.keras"),
                 "--output", str(out)])  # fmt: skip
    card = (out / "README.md").read_text()
    assert "No metrics.json was found beside the model" in card
    assert "| topic | sentence |" in section(card, "Tasks") and "## Metrics" not in card


def test_own_files_and_carved_splits_are_named():
    from mtl_keras.tasks.registry import Task

    task = Task("spam", None, "sentence", ("ham", "spam"), files={"train": "sms.tsv"})
    made = {"train": {"examples": 80, "from": "sms.tsv"},
            "test": {"examples": 10, "from": "sms.tsv by text hash"}}  # fmt: skip
    metrics = {"own_data": {"spam": made}, "train_examples": {"spam": 80},
               "validation": {"spam": {"examples": 10}}, "test": {"spam": {"examples": 10}}}  # fmt: skip
    row = section(model_card([task], None, [], "keras", "runs/x"), "Tasks").splitlines()[2]
    assert row.endswith("| train: `sms.tsv` |") and "| ? | ? | ? |" in row
    card = model_card([task], {**metrics, "config": {"tasks": [task.get_config()]},
                               "scenario": "full", "params": {"trainable": 1, "total": 2}},
                      [], "keras", "runs/x")  # fmt: skip
    row = section(card, "Tasks").splitlines()[2]
    assert "test: sms.tsv by text hash" in row and "| 80 | 10 | 10 |" in row
