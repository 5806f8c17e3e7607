"""The study's rows: one per finished run (from its folder or study.csv), their mean and
sample std over seeds, and paired differences between configurations seed by seed."""

import csv
import json
from pathlib import Path

import numpy as np
import scipy.stats

from mtl_keras.study.grids import (
    CONFIGS,
    GRIDS,
    RECIPE_CONFIGS,
    SIZE_CONFIGS,
    STS_COLUMNS,
    TRANSFER,
    task_main_metric,
)
from mtl_keras.tasks.registry import run_tasks


def rows_from_runs(root):
    """One row per finished grid or transfer run found under `root`."""
    rows = []
    for metrics_file in sorted(Path(root).glob("*/*/metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        grid, name = metrics_file.parent.parent.name, metrics_file.parent.name
        if grid == TRANSFER:
            config, seed = name, 0
        elif grid in GRIDS:
            config, _, seed = name.rpartition("-seed")
        else:
            continue
        row = {
            "grid": grid,
            "config": config,
            "scenario": metrics["scenario"],
            "seed": int(seed),
            "commit": metrics.get("commit") or "",  # empty: made before runs recorded it
            "cpu": metrics.get("cpu") or "",  # the same
            "tasks": ",".join(metrics["tasks"]),
            "trainable_params": metrics["params"]["trainable"],
            "seconds_per_epoch": float(np.mean(metrics["epoch_seconds"] or [0.0])),
            "wall_seconds": metrics["wall_seconds"],
        }
        row["sentiment_train"] = metrics["train_examples"].get("sentiment", 0)
        scores = [
            metrics["validation"].get(t.name, {}).get(t.main_metric) for t in run_tasks(metrics)
        ]
        if None not in scores:  # tiny test data can leave a split empty
            row["val_score"] = float(np.mean(scores))  # what the sweep chooses on
        for task in metrics["tasks"]:
            for key in ("accuracy", "macro_f1", "entity_f1", "pearson"):
                if key in metrics["test"].get(task, {}):
                    row[f"{task}_{key}"] = metrics["test"][task][key]
        for task, weight in metrics.get("learned_loss_weights", {}).items():
            row[f"{task}_loss_weight"] = weight  # uncertainty weighting's, at the end
        for task, confident in metrics.get("test_confident", {}).items():
            if "accuracy" in confident:  # on the tweets labelled with confidence >= 0.8
                row[f"{task}_confident_accuracy"] = confident["accuracy"]
        if metrics.get("sts_b"):
            row["sts_before"] = metrics["sts_b"]["before"]
            row.update({k: metrics["sts_b"][k.removeprefix("sts_")] for k in STS_COLUMNS})
        rows.append(row)
    return rows


def rows_from_csv(path):
    """The rows of a study.csv, numbers as numbers and empty cells left out (as
    `rows_from_runs` leaves out what a run did not measure)."""
    text = ("grid", "config", "scenario", "tasks", "commit", "cpu")

    def number(value):
        return int(value) if value.lstrip("-").isdigit() else float(value)

    with open(path, newline="") as handle:
        return [
            {k: v if k in text else number(v) for k, v in row.items() if v != ""}
            for row in csv.DictReader(handle)
        ]


def write_csv(path, rows):
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows, grid):
    """{config: {column: (mean, std, n)}} over seeds, in CONFIGS order."""
    out = {}
    for config in CONFIGS:
        group = [r for r in rows if r["grid"] == grid and r["config"] == config]
        if not group:
            continue
        columns = [
            k
            for k in group[0]
            if k.endswith(("accuracy", "f1", "pearson", "loss_weight"))
            or k in ("val_score", "trainable_params", "seconds_per_epoch")
        ] + [k for k in STS_COLUMNS if k in group[0]]  # the tasks' columns, then the embedding's
        out[config] = {
            k: (
                float(np.mean([r[k] for r in group])),
                float(np.std([r[k] for r in group], ddof=1)) if len(group) > 1 else 0.0,
                len(group),
            )
            for k in columns
            if all(k in r for r in group)
        }
    return out


def main_column(task):
    """The study.csv column of a task's main test metric: `topic_accuracy`."""
    return f"{task}_{task_main_metric(task)}"


def baseline_of(config):
    """The config a study config is compared with: `full` at the same data size, or the
    recipe without the pairs."""
    if config in RECIPE_CONFIGS:
        return "recipe"
    return f"full-n{config.rpartition('-n')[2]}" if config in SIZE_CONFIGS else "full"


def paired_differences(rows, grid, columns):
    """{config: {column: (mean, sample std, n, low, high)}} of config - its baseline.

    Paired by seed (the same seed means the same data order and initial heads), over the
    seeds both have; (low, high) is the 95 % t-interval of the mean difference. Configs
    with fewer than two shared seeds are left out: one pair has no spread.
    """
    out = {}
    for config in CONFIGS:
        if config == baseline_of(config):
            continue
        values = {c: paired_difference(rows, grid, config, baseline_of(config), c) for c in columns}
        if any(values.values()):
            out[config] = {c: v for c, v in values.items() if v}
    return out


def paired_difference(rows, grid, config, base, column):
    """(mean, sample std, n, low, high) of `config` - `base` on `column` over the seeds
    both ran, or None below two seeds (one pair has no spread)."""
    by_seed = {}
    for row in rows:
        if row["grid"] == grid and row["config"] in (config, base) and column in row:
            by_seed.setdefault(row["seed"], {})[row["config"]] = row[column]
    diff = np.array([v[config] - v[base] for v in by_seed.values() if len(v) == 2])
    if len(diff) < 2:
        return None
    mean, std = float(diff.mean()), float(diff.std(ddof=1))
    half = float(scipy.stats.t.ppf(0.975, len(diff) - 1)) * std / np.sqrt(len(diff))
    return mean, std, len(diff), mean - half, mean + half
