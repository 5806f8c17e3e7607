"""Interrupted training, divergence, determinism and no network, end to end on tiny runs."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import keras
import numpy as np
import pytest

from experiments import run
from experiments.cli import run_main
from mtl_keras.saving import load_model
from mtl_keras.training import trainer
from mtl_keras.training.callbacks import (
    PROGRESS,
    DivergenceGuard,
    EpochCheckpoint,
    read_progress,
    weights_file,
)
from tests.conftest import schedule_config, tiny_run_argv, wait_for_checkpoint


def tiny_argv(tiny_preset, tiny_data_dir, out, *extra):
    return tiny_run_argv(tiny_preset, tiny_data_dir, out, "--seed", "3", *extra)


# A traced tiny epoch with its checkpoint takes about 0.2 s after the first: the process
# is killed once epoch 2 is saved, and the last 9 epochs, the evaluation and the saving of
# the model (about 4 s) are the window for it. The test took 42 s with 40 epochs, 29 s
# with 12 (AMD EPYC, 2 vCPUs; with 12, a study ran beside at the lowest priority).
EPOCHS = 12


# Traced: the killed process's epochs were, and the runs are compared exactly (eager and
# traced steps round differently); tracing also beats running the epochs eagerly.
@pytest.mark.graph
def test_kill_9_mid_training_then_resume(tiny_preset, tiny_data_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = tiny_argv(tiny_preset, tiny_data_dir, out, "--epochs", str(EPOCHS))
    process = subprocess.Popen([sys.executable, "-m", "experiments.run", *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    progress = out / "checkpoint" / PROGRESS
    wait_for_checkpoint(progress, process, epoch=2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not (out / "metrics.json").exists() and not (out / "model.keras").exists()
    killed_after = json.loads(progress.read_text())["epoch"] + 1
    saved = checkpoint_arrays(read_progress(out / "checkpoint")["weights"])

    # Rerun in this process, watching the state the resumed run starts from.
    resumed_from, resume = {}, trainer.MultiTaskTrainer.resume

    def watched_resume(run_state, checkpoint_dir, stopper=None):
        started = resume(run_state, checkpoint_dir, stopper)
        resumed_from["model"] = [v.numpy() for v in run_state.model.weights]
        resumed_from["optimizer"] = [v.numpy() for v in run_state.optimizer.variables]
        resumed_from["iterations"] = int(run_state.optimizer.iterations.numpy())
        return started

    monkeypatch.setattr("mtl_keras.training.trainer.MultiTaskTrainer.resume", watched_resume)
    resumed = run.main(argv)
    monkeypatch.undo()
    # The run started from the checkpoint's weights and optimizer state, not anew.
    state = resumed_from["model"] + resumed_from["optimizer"]
    assert {digest(a) for a in state} == {digest(a) for a in saved}  # h5 repeats nested ones
    steps = resumed["optimizer_iterations"] // EPOCHS
    assert resumed_from["iterations"] == killed_after * steps > 0
    epochs = [int(row["epoch"]) for row in csv.DictReader(open(out / "history.csv"))]
    assert epochs == list(range(EPOCHS))  # every epoch exactly once
    for name in ("model.keras", "metrics.json", "curves.png", "tokenizer/tokenizer.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint").exists()  # removed once the run completed
    assert len(resumed["epoch_seconds"]) == EPOCHS

    # The same run uninterrupted: same batches, same dropout, so the same model.
    whole = run.main(tiny_argv(tiny_preset, tiny_data_dir, tmp_path / "whole", "--epochs",
                               str(EPOCHS)))  # fmt: skip
    assert whole["optimizer_iterations"] == resumed["optimizer_iterations"]
    for split in ("validation", "test"):
        assert resumed[split] == whole[split]
    # Determinism: two fresh runs with one seed (the killed process, whose epochs the
    # checkpoint kept, and this one) logged the same losses and metrics, epoch for epoch.
    history = [(out / "history.csv").read_text(), (tmp_path / "whole" / "history.csv").read_text()]
    assert history[0] == history[1] and len(history[0].splitlines()) == EPOCHS + 1
    resumed_model = load_model(out / "model.keras")  # its schedule ran on past the resume
    schedule = schedule_config(resumed_model.optimizer)
    assert schedule["total_steps"] == resumed["optimizer_iterations"] == EPOCHS * steps
    assert schedule["warmup_steps"] == round(0.1 * EPOCHS * steps) > 0
    assert float(resumed_model.optimizer.learning_rate) == 0.0
    mine = resumed_model.get_weights()
    theirs = load_model(tmp_path / "whole" / "model.keras").get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(mine, theirs, strict=True)) == 0.0


def checkpoint_arrays(path):
    """Every array a `.weights.h5` checkpoint holds (model and optimizer), read with h5py."""
    arrays = []
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None
        )
    return arrays


def digest(array):
    array = np.asarray(array)
    return (array.shape, str(array.dtype), array.tobytes())


def test_divergence_stops_with_a_clear_message(tiny_preset, tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "diverged"
    with pytest.raises(SystemExit) as info:
        run_main(
            run.main,
            tiny_argv(
                tiny_preset,
                tiny_data_dir,
                out,
                "--epochs",
                "3",
                "--learning-rate",
                "1e38",
                "--scenario",
                "frozen_backbone",
            ),
        )
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "training diverged" in err and "\n" not in err
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()


def test_checkpoint_is_not_overwritten_after_divergence(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    guard = DivergenceGuard()
    checkpoint = EpochCheckpoint(tmp_path, guard, lambda epoch, logs: {"history": []})
    for callback in (guard, checkpoint):
        callback.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    saved = (tmp_path / weights_file(0)).read_bytes()
    guard.on_epoch_begin(1)
    guard.on_train_batch_end(4, {"loss": float("nan")})
    model.layers[0].kernel.assign(np.full((2, 1), np.nan, "float32"))
    checkpoint.on_epoch_end(1, {"loss": float("nan")})
    assert guard.diverged_at == (2, 5) and model.stop_training
    assert read_progress(tmp_path)["weights"].read_bytes() == saved
    assert json.loads((tmp_path / PROGRESS).read_text())["epoch"] == 0


def test_a_kill_between_the_checkpoint_files_leaves_a_consistent_checkpoint(tmp_path):
    """Killed after an epoch's weights were written but before its progress: the
    checkpoint is still the previous epoch's, weights and progress alike."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")

    def killed(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt  # where a kill -9 may land
        return {"history": []}

    checkpoint = EpochCheckpoint(tmp_path, DivergenceGuard(), killed)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {})
    first = [w.copy() for w in model.get_weights()]
    model.layers[0].kernel.assign(np.full((2, 1), 7.0, "float32"))  # epoch 1 trained
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(1, {})
    progress = read_progress(tmp_path)
    assert progress["epoch"] == 0
    model.load_weights(progress["weights"])
    for a, b in zip(model.get_weights(), first, strict=True):
        np.testing.assert_array_equal(a, b)
    checkpoint.progress_fn = lambda epoch, logs: {"history": []}
    checkpoint.on_epoch_end(1, {})  # the next good epoch removes the older files
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == [weights_file(1)]


def test_run_end_to_end_with_outbound_connections_blocked(tiny_preset, tiny_data_dir, tmp_path):
    out = tmp_path / "offline"
    argv = tiny_argv(tiny_preset, tiny_data_dir, out, "--epochs", "1")
    script = textwrap.dedent(f"""
        import runpy, socket, sys
        def refuse(*args, **kwargs):
            raise OSError("network blocked by the test")
        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        sys.argv = ["experiments.run", *{argv!r}]
        runpy.run_module("experiments.run", run_name="__main__")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "metrics.json").is_file() and (out / "model.keras").is_file()


def test_batch_size_beyond_the_data_is_capped(tiny_preset, tiny_data_dir, tmp_path, capsys):
    argv = tiny_argv(tiny_preset, tiny_data_dir, tmp_path / "big", "--epochs", "1")
    caps = ["--max-train-examples", "3", "--train-examples", "topic=2"]
    metrics = run.main([*argv, "--batch-size", "100000", *caps])
    assert "capped at the" in capsys.readouterr().out
    assert metrics["optimizer_iterations"] == 1  # one batch holding every example once
    sizes = metrics["train_examples"]
    others = {size for task, size in sizes.items() if task != "topic"}
    assert sizes["topic"] == 2 and others == {3}  # a task's own cap wins over the shared one


def test_non_finite_weights_or_metrics_are_never_saved(tiny_preset):
    from mtl_keras.errors import TrainingDiverged
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.tasks import resolve_tasks
    from mtl_keras.training.setup import check_finite
    from tests.conftest import make_tiny_backbone

    model = MultiTaskModel(make_tiny_backbone(), resolve_tasks("topic"))
    good = {"validation": {"topic": {"accuracy": 0.5}}, "test": {"topic": {"accuracy": 0.5}}}
    check_finite(model, good)
    bad = {**good, "test": {"topic": {"accuracy": float("nan")}}}
    with pytest.raises(TrainingDiverged, match="metric test/topic/accuracy"):
        check_finite(model, bad)
    model.head_denses["topic"].kernel.assign(np.full((16, 5), np.inf, "float32"))
    with pytest.raises(TrainingDiverged, match="weight topic/kernel"):
        check_finite(model, good)


def test_run_rejected_after_its_folder_was_made_leaves_no_folder(
    tiny_preset, tiny_data_dir, tmp_path, capsys
):
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.tasks import resolve_tasks
    from tests.conftest import make_tiny_backbone

    narrow = tmp_path / "narrow.keras"  # other shapes: refused while building the model
    MultiTaskModel(make_tiny_backbone(hidden_dim=8), resolve_tasks("topic")).save(narrow)
    out = tmp_path / "never"
    argv = tiny_argv(
        tiny_preset, tiny_data_dir, out, "--tasks", "topic", "--init-from", str(narrow)
    )
    with pytest.raises(SystemExit):
        run_main(run.main, argv)
    assert "other shapes" in capsys.readouterr().err and not out.exists()
