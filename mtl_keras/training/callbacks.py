"""Callbacks of a training run: epoch timing, resumable checkpoints, divergence stop,
the validation score that early stopping watches."""

import json
import math
import time
from pathlib import Path

import keras

from mtl_keras.artifacts import atomic_write
from mtl_keras.distributed.cluster import local_only

CHECKPOINT_DIR = "checkpoint"
PROGRESS = "progress.json"  # names the weights file of the epoch it describes
WEIGHTS_FILES = "epoch-*.weights.h5"
OLD_WEIGHTS = "last_epoch.weights.h5"  # the weights of checkpoints from before epoch files


def weights_file(epoch):
    return WEIGHTS_FILES.replace("*", f"{epoch:05d}")


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch, kept across the several `fit` calls of a staged run."""

    def __init__(self, times=()):
        super().__init__()
        self.times = list(times)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


class ValidationScore(keras.callbacks.Callback):
    """Adds `val_score` to each epoch's logs: the mean of the tasks' main validation metrics.

    One number for a multi-task model, so that Keras' `EarlyStopping` can watch it
    (accuracy for sentence heads, entity F1 for NER, Pearson r for pairs; all in [0, 1]
    or near it, so no task dominates). Tasks without validation data are left out.
    """

    MONITOR = "val_score"

    def __init__(self, tasks, per_task_logs):
        super().__init__()
        self.keys = [f"val_{task.name}_{task.main_metric}" for task in tasks]
        self.names = [task.name for task in tasks]
        self.per_task_logs = per_task_logs

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        named = self.per_task_logs(logs, self.names)
        values = [float(named[key]) for key in self.keys if key in named]
        if values:
            logs[self.MONITOR] = sum(values) / len(values)


class RunEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping` (keeping the best epoch's weights) over a whole run instead
    of one `fit` call.

    Keras resets its count and its best weights at the start of every `fit`, so across
    the stages of gradual unfreezing a stop in one stage let the next train on, and the
    run kept the last stage's best, not the run's. Here the count and the best carry over
    (and, through `state` and the checkpoint, across a resume), a stop ends the run
    (`stopped`), and the best weights come back once, at the run's end (`finish`).
    """

    def __init__(self, monitor, patience, verbose=0):
        super().__init__(monitor, patience=patience, mode="max", restore_best_weights=True,
                         verbose=verbose)  # fmt: skip
        self.started = False

    def on_train_begin(self, logs=None):
        if not self.started:  # the run's first `fit` only
            super().on_train_begin(logs)
            self.started = True

    def on_train_end(self, logs=None):
        """Nothing at the end of one `fit`: the run may have more stages (`finish`)."""

    @property
    def stopped(self):
        return self.stopped_epoch > 0

    def finish(self):
        """At the run's end: say where it stopped, and bring the best epoch's weights back."""
        super().on_train_end()

    def state(self):
        """What a checkpoint keeps (the best weights live in the best epoch's file)."""
        best = None if self.best is None else float(self.best)
        return {"best": best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch}  # fmt: skip

    def load_state(self, state, best_weights):
        """Carry on from a checkpoint's `state` and the best epoch's weights (arrays)."""
        self.started = True
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_weights = best_weights


class DivergenceGuard(keras.callbacks.TerminateOnNaN):
    """Keras' `TerminateOnNaN` that also remembers where the loss stopped being finite."""

    def __init__(self):
        super().__init__()
        self.diverged_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = (self._epoch + 1, batch + 1)
        super().on_train_batch_end(batch, logs)


def seed_states(model):
    """The model's random-number states (dropout's `SeedGenerator`s), in a fixed order.

    `save_weights` leaves them out; a resumed run restores them from the checkpoint, so
    its dropout masks are the ones an uninterrupted run would have drawn.
    """
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights and "seed" in v.path]


class EpochCheckpoint(keras.callbacks.Callback):
    """After every good epoch: weights + optimizer state, then the run's progress.

    Like Keras' `BackupAndRestore`, but one checkpoint spans the several `fit` calls of a
    staged run (gradual unfreezing), and it records the history so far and the dropout
    random states. Each epoch's weights go to a file of their own, then the progress
    file that names them; both are written to a temporary name and renamed, and the
    previous epoch's weights are removed last, so a `kill -9` at any point leaves a
    progress file whose weights are whole and of the same epoch. Nothing is saved after
    a diverged epoch.
    """

    def __init__(self, directory, guard, progress_fn, target=None):
        super().__init__()
        self.directory = Path(directory)
        self.guard = guard
        self.progress_fn = progress_fn
        self.target = target  # the model to save, when `fit` runs on a part of it

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.diverged_at is not None:
            return
        model = self.target or self.model
        weights = weights_file(epoch)
        with local_only():  # under data parallelism, process 0 writes on its own
            atomic_write(self.directory / weights, model.save_weights)
        seeds = [keras.ops.convert_to_numpy(v).tolist() for v in seed_states(model)]
        progress = {"epoch": epoch, "weights": weights, "seed_states": seeds,
                    **self.progress_fn(epoch, logs or {})}  # fmt: skip
        text = json.dumps(progress)
        atomic_write(self.directory / PROGRESS, lambda tmp: Path(tmp).write_text(text))
        # Kept: this epoch's weights, and those of the best epoch early stopping returns to.
        best = progress.get("stopping", {}).get("best_epoch")
        keep = {weights, weights_file(best) if best is not None else weights}
        for old in self.directory.glob(WEIGHTS_FILES):
            if old.name not in keep:
                old.unlink()


def read_progress(directory):
    """The last checkpoint's progress dict, or None when there is no checkpoint.

    Its "weights" is the path of the weights file of the same epoch.
    """
    path = Path(directory) / PROGRESS
    if not path.is_file():
        return None
    progress = json.loads(path.read_text())
    weights = Path(directory) / progress.get("weights", OLD_WEIGHTS)
    return {**progress, "weights": weights} if weights.is_file() else None
