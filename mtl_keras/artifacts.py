"""Writing a run's files so that a crash never leaves half of one.

One helper, `atomic_write`, serves training artefacts, checkpoints and exports: write to
a hidden temporary sibling, then rename over the target. A reader (or TF Serving, which
watches a model folder) sees the old version or the new one, never a partial one.
"""

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

from mtl_keras.errors import InputError, first_line


def ensure_writable_dir(path, option):
    """Create folder `path` (with parents) and prove it writable, before any work is done.

    Raises a one-line `InputError` naming `option` (e.g. "--output-dir") when the path is
    a file, sits under a file, or cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} '{path}' is a file, not a folder: choose a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-").close()
    except OSError as error:
        reason = error.strerror or first_line(error)
        raise InputError(f"{option} '{path}' cannot be created or written ({reason}).") from None
    return path


def check_replaceable(output, overwrite):
    """Refuse to write a folder over a file, or over an existing folder without `overwrite`."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"'{output}' is a file: the export writes a folder there.")
    if output.exists() and not overwrite:
        raise InputError(f"'{output}' exists; pass --overwrite to replace it.")
    return output


def atomic_write(path, write, directory=False):
    """Call `write(tmp)` on a temporary sibling of `path`, then rename it to `path`.

    Args:
        path: the file (or, with `directory=True`, folder) to create or replace.
        write: a function of the temporary path that writes the content there.
        directory: the content is a folder (an existing one at `path` is replaced).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}-"
    if directory:
        tmp = tempfile.mkdtemp(dir=path.parent, prefix=prefix)
    else:
        suffix = "".join(path.suffixes)  # Keras wants `.keras`, `.weights.h5` endings
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        write(tmp)
        if directory and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
    return path


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_json(path, data):
    text = json.dumps(data, indent=2, default=float) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_history_csv(path, history):
    """One row per epoch: `epoch` then every logged metric."""
    keys = sorted({k for row in history for k in row if k != "epoch"})

    def write(tmp):
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", *keys])
            for row in history:
                writer.writerow([row["epoch"], *(row.get(k, "") for k in keys)])

    return atomic_write(path, write)


def save_model(model, path):
    """`model.save` to a temporary `.keras` file, then rename."""
    return atomic_write(path, lambda tmp: model.save(tmp))


def write_card(folder, card):
    """Write a model card's text (`model_card`) as `folder`/README.md; nothing for None."""
    if card is not None:
        (Path(folder) / "README.md").write_text(card, encoding="utf-8")
