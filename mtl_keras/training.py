"""Pieces of a training run that are not the run itself: optimizer, counts, artefacts."""

import csv
import json
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from mtl_keras.layerwise_lr import LayerwiseLR, layer_decay_multipliers


def make_optimizer(
    scenario, learning_rate, num_layers, layer_decay=0.8, head_multiplier=1.0, weight_decay=0.01
):
    """AdamW, wrapped in LayerwiseLR when the scenario decays rates by layer."""
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    if scenario.layer_decay:
        multipliers = layer_decay_multipliers(num_layers, layer_decay, head_multiplier)
        optimizer = LayerwiseLR(optimizer, multipliers)
    return optimizer


def param_counts(model):
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return {"trainable": trainable, "total": total, "non_trainable": total - trainable}


def _atomic(path, write):
    """Write via a temporary file in the same directory, then rename over `path`.

    A crash leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path, data):
    def write(tmp):
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=False, default=float) + "\n")

    return _atomic(path, write)


def write_history_csv(path, history):
    """One row per epoch: `epoch` then every logged metric."""
    keys = sorted({k for row in history for k in row if k != "epoch"})

    def write(tmp):
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", *keys])
            for row in history:
                writer.writerow([row["epoch"], *(row.get(k, "") for k in keys)])

    return _atomic(path, write)


def save_model(model, path):
    """`model.save` to a temporary `.keras` file, then rename."""
    return _atomic(path, lambda tmp: model.save(tmp))


def plot_curves(path, history, tasks):
    """curves.png: per task, cross-entropy and main metric per epoch (train, validation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] + 1 for row in history]
    fig, axes = plt.subplots(2, len(tasks), figsize=(4 * len(tasks), 6), squeeze=False)
    for column, task in enumerate(tasks):
        metric = "entity_f1" if task.kind == "token" else "accuracy"
        for row, name in enumerate(("xent", metric)):
            ax = axes[row][column]
            for prefix, style in (("", "-o"), ("val_", "--s")):
                key = f"{prefix}{task.name}_{name}"
                values = [r.get(key, np.nan) for r in history]
                if not np.all(np.isnan(values)):
                    ax.plot(epochs, values, style, label="validation" if prefix else "train")
            ax.set_title(f"{task.name} {name}")
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)
    return path
