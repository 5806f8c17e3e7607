"""Training tasks one after another: a task held at 0 training examples keeps its head
(frozen, measured) while the others train the shared encoder from an earlier run."""

import json

import numpy as np
import pytest

from mtl_keras.config import RunConfig
from mtl_keras.data.pipeline import training_stream
from mtl_keras.errors import InputError
from mtl_keras.saving import load_model
from mtl_keras.tasks import resolve_tasks
from tests.conftest import make_tiny_tokenizer, tiny_run_argv


def test_a_held_task_keeps_its_head_and_is_measured(tiny_run, tiny_preset, tiny_data_dir, tmp_path):
    """From the shared tiny run (topic, sentiment, ner), train ner alone with topic and
    sentiment held: their heads are the run's, the encoder moved, all three are tested."""
    from experiments import run

    argv = tiny_run_argv(tiny_preset, tiny_data_dir, tmp_path / "then", "--init-from",
                         str(tiny_run / "model.keras"), "--tasks", "topic,sentiment,ner",
                         "--train-examples", "topic=0,sentiment=0", "--epochs", "1")  # fmt: skip
    run.main(argv)
    metrics = json.loads((tmp_path / "then" / "metrics.json").read_text())
    assert metrics["train_examples"]["topic"] == metrics["train_examples"]["sentiment"] == 0
    assert metrics["train_examples"]["ner"] > 0
    assert {"topic", "sentiment", "ner"} <= set(metrics["test"])
    assert metrics["stages"][0]["frozen"] == ["head:topic", "head:sentiment"]
    before = load_model(tiny_run / "model.keras", compile=False)
    after = load_model(tmp_path / "then" / "model.keras", compile=False)
    for head in ("topic", "sentiment"):
        for a, b in zip(after.get_layer(head).get_weights(), before.get_layer(head).get_weights(),
                        strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b, err_msg=head)
    moved = zip(after.backbone.get_weights(), before.backbone.get_weights(), strict=True)
    assert any(not np.array_equal(a, b) for a, b in moved)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(
            after.get_layer("ner").get_weights(), before.get_layer("ner").get_weights(), strict=True
        )
    )


def test_the_stream_leaves_held_tasks_out(tiny_data_dir):
    from mtl_keras.encoding.preprocessing import make_preprocessor

    tasks = resolve_tasks("topic,sentiment")
    preprocessor = make_preprocessor(make_tiny_tokenizer(), 16)
    stream, steps, sizes = training_stream(tasks, preprocessor, batch_size=2, max_length=16,
                                           max_examples={"topic": 0, "sentiment": None},
                                           data_dir=tiny_data_dir)  # fmt: skip
    assert sizes["topic"] == 0 and sizes["sentiment"] > 0 and steps == sizes["sentiment"] // 2
    for _, _, weights in stream.take(steps):
        assert float(np.sum(weights["topic"])) == 0 and float(np.sum(weights["sentiment"])) > 0


def test_holding_every_task_is_refused():
    with pytest.raises(InputError, match="holds every task at 0: nothing would train"):
        RunConfig(tasks="topic,sentiment", train_examples={"topic": 0, "sentiment": 0})
    with pytest.raises(InputError, match="a cap must be a whole number >= 0"):
        RunConfig(tasks="topic,sentiment", train_examples={"topic": -1})
