"""Plots of a run (learning curves) and of a study (metrics, trade-offs), as PNG files.

matplotlib is imported inside each function with the Agg backend, so importing
mtl_keras never needs a display or pays for matplotlib.
"""

import numpy as np

from mtl_keras.artifacts import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi=80):
    plt = _pyplot()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    plt.close(fig)
    return path


def plot_curves(path, history, tasks):
    """curves.png: per task, its loss and main metric per epoch (train, validation)."""
    plt = _pyplot()
    epochs = [row["epoch"] + 1 for row in history]
    fig, axes = plt.subplots(2, len(tasks), figsize=(4 * len(tasks), 6), squeeze=False)
    for column, task in enumerate(tasks):
        for row, name in enumerate((task.loss_metric, task.main_metric)):
            ax = axes[row][column]
            for prefix, style in (("", "-o"), ("val_", "--s")):
                key = f"{prefix}{task.name}_{name}"
                values = [r.get(key, np.nan) for r in history]
                if not np.all(np.isnan(values)):
                    ax.plot(epochs, values, style, label="validation" if prefix else "train")
            ax.set_title(f"{task.name} {name}")
            ax.set_xlabel("epoch")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_study_metrics(path, summary):
    """Bars: each config's test metrics, mean ± std over seeds."""
    plt = _pyplot()
    configs = list(summary)
    metrics = [k for k in next(iter(summary.values())) if k.endswith(("accuracy", "entity_f1"))]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        means = [summary[c][metric][0] for c in configs]
        stds = [summary[c][metric][1] for c in configs]
        ax.bar(range(len(configs)), means, yerr=stds, capsize=3, color="tab:blue")
        ax.set_xticks(range(len(configs)), configs, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(max(0.0, min(means) - 0.1), min(1.0, max(means) + 0.05))
        ax.set_title(f"{metric} (test, mean ± std over seeds)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)


def plot_study_tradeoffs(path, summary):
    """Scatter: test metrics against trainable parameters and seconds per epoch."""
    plt = _pyplot()
    configs = list(summary)
    metrics = [k for k in next(iter(summary.values())) if k.endswith(("accuracy", "entity_f1"))]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for metric in metrics:
        for ax, x_key, label in (
            (axes[0], "trainable_params", "trainable parameters"),
            (axes[1], "seconds_per_epoch", "seconds per epoch"),
        ):
            xs = [summary[c][x_key][0] for c in configs]
            ys = [summary[c][metric][0] for c in configs]
            ax.scatter(xs, ys, label=metric)
            for x, y, c in zip(xs, ys, configs, strict=True):
                ax.annotate(c, (x, y), fontsize=6)
            ax.set_xlabel(label)
            ax.set_xscale("symlog" if x_key == "trainable_params" else "linear")
    axes[0].set_ylabel("test metric")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)


def plot_learning_curves(path, curves, tasks):
    """Validation metric per epoch, one line per config.

    Args:
        curves: {config: [history rows as dicts of str]} (history.csv contents).
        tasks: [(task name, metric name)].
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for config, rows in curves.items():
        for ax, (task, metric) in zip(axes[0], tasks, strict=True):
            key = f"val_{task}_{metric}"
            if rows and key in rows[0]:
                epochs = [int(r["epoch"]) + 1 for r in rows]
                ax.plot(epochs, [float(r[key]) for r in rows], "-o", label=config)
            ax.set_title(f"validation {task} {metric}")
            ax.set_xlabel("epoch")
    if axes[0][0].get_legend_handles_labels()[0]:  # no curves without validation data
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)


def plot_sts_tradeoff(path, summary):
    """Scatter: each task's test metric against the embedding's STS-B Spearman after
    training, one point per config (how much a scenario forgets against what it learns)."""
    plt = _pyplot()
    configs = list(summary)
    metrics = [k for k in next(iter(summary.values())) if k.endswith(("accuracy", "entity_f1"))]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        xs = [summary[c]["sts_after"][0] for c in configs]
        ys = [summary[c][metric][0] for c in configs]
        ax.scatter(xs, ys)
        for x, y, c in zip(xs, ys, configs, strict=True):
            ax.annotate(c, (x, y), fontsize=6)
        ax.set_xlabel("STS-B test Spearman x 100 after training")
        ax.set_ylabel(f"test {metric}")
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)


def plot_size_curve(path, curves, metrics):
    """Lines: test metrics against the training examples of the varied task, per scenario.

    Args:
        curves: {scenario: [(examples, {metric: (mean, std, seeds)})]}, examples rising.
        metrics: the metric columns to draw, one panel each.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for scenario, points in curves.items():
            xs = [x for x, _ in points]
            means = [values[metric][0] for _, values in points]
            stds = [values[metric][1] for _, values in points]
            ax.errorbar(xs, means, yerr=stds, fmt="-o", capsize=3, label=scenario)
        ax.set_xscale("log")
        ax.set_xlabel("sentiment training tweets")
        ax.set_title(f"test {metric} (mean ± std over seeds)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)


def plot_affinity(path, cells):
    """Heat map: the change in each measured task's metric (rows) when trained beside each
    added task (columns), in points; cells without two paired seeds are left blank.

    Args:
        cells: {measured: {added: (mean, std, n, low, high) or None}} (`study.affinity`).
    """
    plt = _pyplot()
    rows = list(cells)
    added = dict.fromkeys(c for values in cells.values() for c in values)
    columns = [*rows, *(c for c in added if c not in rows)]  # the same order as the rows
    grid = np.full((len(rows), len(columns)), np.nan)
    for i, task in enumerate(rows):
        for j, column in enumerate(columns):
            if cells[task].get(column):
                grid[i, j] = 100 * cells[task][column][0]
    limit = max(1.0, float(np.nanmax(np.abs(grid)))) if np.isfinite(grid).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.4 * len(columns) + 2, 0.8 * len(rows) + 1.5))
    image = ax.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit)
    for i, j in zip(*np.where(np.isfinite(grid)), strict=True):
        low, high = cells[rows[i]][columns[j]][3:]
        mark = "*" if low > 0 or high < 0 else ""  # the 95 % interval excludes 0
        # RdBu is dark at its ends: white labels there, black elsewhere.
        colour = "white" if abs(grid[i, j]) > 0.6 * limit else "black"
        label = f"{grid[i, j]:+.1f}{mark}"
        ax.text(j, i, label, ha="center", va="center", fontsize=9, color=colour)
    ax.set_xticks(range(len(columns)), [f"+ {c}" for c in columns])
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("task added")
    ax.set_ylabel("task measured")
    fig.colorbar(image, ax=ax, label="change in test metric (points; * beyond seed noise)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=70)
