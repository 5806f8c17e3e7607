"""Callbacks that make a run resumable after a crash and stop it cleanly on divergence."""

import json
import math
import os
from pathlib import Path

import keras

CHECKPOINT_DIR = "checkpoint"
WEIGHTS = "last_epoch.weights.h5"
PROGRESS = "progress.json"


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


class EpochCheckpoint(keras.callbacks.Callback):
    """After every good epoch: weights + optimizer state, then the run's progress.

    Like Keras' `BackupAndRestore`, but one checkpoint spans the several `fit` calls of a
    staged run (gradual unfreezing), and it records the history so far. Both files are
    written to a temporary name and renamed, so a `kill -9` leaves the previous
    checkpoint whole. Nothing is saved after a diverged epoch.
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
        self.directory.mkdir(parents=True, exist_ok=True)
        weights = self.directory / WEIGHTS
        staging = self.directory / f".staging.{WEIGHTS}"
        (self.target or self.model).save_weights(staging)
        os.replace(staging, weights)
        progress = {"epoch": epoch, **self.progress_fn(epoch, logs or {})}
        tmp = self.directory / f".{PROGRESS}"
        tmp.write_text(json.dumps(progress))
        os.replace(tmp, self.directory / PROGRESS)


def read_progress(directory):
    """The last checkpoint's progress dict, or None when there is no checkpoint."""
    path = Path(directory) / PROGRESS
    if not path.is_file() or not (Path(directory) / WEIGHTS).is_file():
        return None
    return json.loads(path.read_text())
