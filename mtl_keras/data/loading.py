"""Prepare-on-first-use loading of the packaged datasets as `tf.data` pipelines."""

import contextlib
import os
import tempfile
from pathlib import Path

import tensorflow as tf
import tensorflow_datasets as tfds

from mtl_keras.data.builders import BUILDERS
from mtl_keras.data.splits import SPLITS
from mtl_keras.errors import InputError

DATA_DIR_ENV = "MTL_KERAS_DATA_DIR"


def resolve_data_dir(data_dir=None):
    """Argument, else $MTL_KERAS_DATA_DIR, else `<TFDS data dir>/mtl_keras`."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or Path(tfds.core.constants.DATA_DIR) / "mtl_keras"
    path = Path(data_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"data dir '{path}' is a file, not a folder: pass a folder (--data-dir).")
    return path


@contextlib.contextmanager
def scratch_tempdir():
    """Temporary files made inside go to a folder that is removed on the way out.

    A TFDS builder of a dataset not yet prepared makes an empty temporary folder (for the
    dataset info it would copy from Google's bucket) and never removes it: one left in
    /tmp per dataset prepared, some 65 per test run.
    """
    with tempfile.TemporaryDirectory(prefix="mtl_keras-") as scratch:
        before, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            yield
        finally:
            tempfile.tempdir = before


def get_builder(name, data_dir=None, prepare=True, source=None):
    """The TFDS builder for `name`, prepared (offline) unless `prepare=False`."""
    if name not in BUILDERS:
        raise InputError(f"unknown dataset '{name}'; choose one of: {', '.join(BUILDERS)}.")
    directory = resolve_data_dir(data_dir)
    with scratch_tempdir():
        builder = BUILDERS[name](data_dir=str(directory), source=source)
    if not builder.is_prepared():
        if not prepare:
            raise InputError(
                f"dataset '{name}' is not prepared in {directory}: "
                "run `python -m experiments.data prepare` (or load with prepare=True)."
            )
        config = tfds.download.DownloadConfig(try_download_gcs=False)
        tfds.disable_progress_bar()
        builder.download_and_prepare(download_config=config)
    return builder


def without_autotuning(dataset):
    """`dataset` with tf.data's autotuning off.

    With it on, the end of every pass (each `fit`, `evaluate`, epoch's validation, split
    read) waited up to 9 s on this 2-core machine while the iterator shut down, and the
    passes themselves ran no faster (measured on the test splits' evaluation).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def load(name, split, data_dir=None, prepare=True):
    """`tf.data.Dataset` of one split of a packaged dataset, as dicts of features."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}.")
    builder = get_builder(name, data_dir, prepare)
    if split not in builder.info.splits:  # only tiny sources leave a split empty
        any_split = next(iter(builder.info.splits))
        return without_autotuning(builder.as_dataset(split=any_split, shuffle_files=False).take(0))
    return without_autotuning(builder.as_dataset(split=split, shuffle_files=False))
