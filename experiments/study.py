"""The study: every scenario measured on the real data, over seeds, into tables and plots.

    python -m experiments.study                          # the whole grid (resumable)
    python -m experiments.study --scenarios full,llrd-0.8 --seeds 0
    python -m experiments.study --report-only            # rebuild results/ from finished runs

Each run is `python -m experiments.run` in its own process, writing into
study_runs/<grid>/<config>-seed<k>/; a run whose metrics.json exists is skipped, so an
interrupted study resumes where it stopped. Results: results/study.csv, RESULTS.md and
results/*.png.
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from experiments.cli import run_main
from mtl_keras.errors import InputError

# The per-run budget: sized so that one run takes about 2-3 minutes on 2 CPU cores.
BUDGET = ["--epochs", "2", "--max-length", "64", "--batch-size", "32",
          "--max-train-examples", "1000", "--max-eval-examples", "1000"]  # fmt: skip

# config name -> (scenario, extra runner arguments). Layer-wise decay at three values.
CONFIGS = {
    "full": ("full", []),
    "frozen_all": ("frozen_all", []),
    "frozen_backbone": ("frozen_backbone", []),
    "frozen_head_a": ("frozen_head_a", []),
    "frozen_head_b": ("frozen_head_b", []),
    "frozen_lower": ("frozen_lower", ["--frozen-layers", "3"]),
    "gradual_unfreeze": ("gradual_unfreeze", ["--unfreeze-every", "1"]),
    "llrd-0.65": ("llrd", ["--layer-decay", "0.65"]),
    "llrd-0.8": ("llrd", ["--layer-decay", "0.8"]),
    "llrd-0.95": ("llrd", ["--layer-decay", "0.95"]),
    "lora": ("lora", ["--lora-rank", "8"]),
}
# grid name -> (tasks, configs, seeds)
GRIDS = {
    "main": ("topic,sentiment", list(CONFIGS), [0, 1, 2]),
    "ner": ("topic,ner", ["full", "frozen_backbone", "llrd-0.8", "lora"], [0]),
}
MAIN_METRIC = {"topic": "accuracy", "sentiment": "accuracy", "ner": "entity_f1"}


RUNNER_ARGS = []  # appended to every run (tests point runs at tiny weights and data)


def run_one(folder, tasks, config, seed, extra=(), save_model=False):
    """One runner process; returns its metrics (from disk when it already finished)."""
    metrics_file = folder / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text())
    scenario, knobs = CONFIGS[config]
    argv = [
        sys.executable,
        "-m",
        "experiments.run",
        "--scenario",
        scenario,
        "--tasks",
        tasks,
        "--seed",
        str(seed),
        "--output-dir",
        str(folder),
        "--verbose",
        "2",
        *BUDGET,
        *knobs,
        *extra,
        *RUNNER_ARGS,
        *([] if save_model else ["--no-save-model"]),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(folder / "log.txt", "w") as log:
        code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT)
    if code != 0 or not metrics_file.is_file():
        print(f"  FAILED ({code}); see {folder / 'log.txt'}", flush=True)
        return None
    print(f"  done in {time.perf_counter() - started:.0f}s", flush=True)
    return json.loads(metrics_file.read_text())


def rows_from_runs(root):
    """One row per finished run found under `root`."""
    rows = []
    for metrics_file in sorted(root.glob("*/*/metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        grid, name = metrics_file.parent.parent.name, metrics_file.parent.name
        if grid not in GRIDS:  # the transfer experiment has its own table
            continue
        config, _, seed = name.rpartition("-seed")
        row = {
            "grid": grid,
            "config": config,
            "scenario": metrics["scenario"],
            "seed": int(seed),
            "tasks": ",".join(metrics["tasks"]),
            "trainable_params": metrics["params"]["trainable"],
            "seconds_per_epoch": float(np.mean(metrics["epoch_seconds"] or [0.0])),
            "wall_seconds": metrics["wall_seconds"],
        }
        for task in metrics["tasks"]:
            for key in ("accuracy", "macro_f1", "entity_f1"):
                if key in metrics["test"].get(task, {}):
                    row[f"{task}_{key}"] = metrics["test"][task][key]
        rows.append(row)
    return rows


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
            if k.endswith(("accuracy", "f1")) or k in ("trainable_params", "seconds_per_epoch")
        ]
        out[config] = {
            k: (
                float(np.mean([r[k] for r in group])),
                float(np.std([r[k] for r in group])),
                len(group),
            )
            for k in columns
            if all(k in r for r in group)
        }
    return out


def plot(results_dir, rows, summary, grid):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.savefig(results_dir / f"{grid}_metrics.png", dpi=70)
    plt.close(fig)

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
    fig.savefig(results_dir / f"{grid}_tradeoffs.png", dpi=70)
    plt.close(fig)


def learning_curves(results_dir, root, grid):
    """Validation metric per epoch for seed 0 of each config."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = sorted((root / grid).glob("*-seed0/history.csv"))
    if not histories:
        return
    tasks = GRIDS[grid][0].split(",")
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for history in histories:
        with open(history) as handle:
            rows = list(csv.DictReader(handle))
        for ax, task in zip(axes[0], tasks, strict=True):
            key = f"val_{task}_{MAIN_METRIC[task]}"
            if rows and key in rows[0]:
                ax.plot(
                    [int(r["epoch"]) + 1 for r in rows],
                    [float(r[key]) for r in rows],
                    "-o",
                    label=history.parent.name.removesuffix("-seed0"),
                )
                ax.set_title(f"validation {task} {MAIN_METRIC[task]}")
                ax.set_xlabel("epoch")
    if axes[0][0].get_legend_handles_labels()[0]:  # no curves without validation data
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(results_dir / f"{grid}_learning_curves.png", dpi=70)
    plt.close(fig)


def markdown_table(summary):
    columns = list(next(iter(summary.values())))
    lines = ["| config | seeds | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for config, values in summary.items():
        cells = []
        for column in columns:
            mean, std, _ = values[column]
            if column == "trainable_params":
                cells.append(f"{mean:,.0f}")
            elif column == "seconds_per_epoch":
                cells.append(f"{mean:.0f}")
            else:
                cells.append(f"{mean:.4f} ± {std:.4f}")
        n = next(iter(values.values()))[2]
        lines.append(f"| {config} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def transfer_experiment(root):
    """Topic alone, then add sentiment with the topic head frozen, starting from that model."""
    first = run_one(root / "transfer" / "topic_only", "topic", "full", 0, save_model=True)
    if first is None:
        return None
    init = ["--init-from", str(root / "transfer" / "topic_only" / "model.keras")]
    second = run_one(
        root / "transfer" / "add_sentiment", "topic,sentiment", "frozen_head_a", 0, init
    )
    return first, second


def report(root, results_dir, readme):
    rows = rows_from_runs(root)
    if not rows:
        raise InputError(f"no finished runs under {root}: run the study first.")
    results_dir.mkdir(parents=True, exist_ok=True)
    write_csv(results_dir / "study.csv", rows)
    parts = [
        "# Study results",
        "",
        'Made by `python -m experiments.study` (see README, "Training considerations").',
        f"Per-run budget: `{' '.join(BUDGET)}` (test metrics on up to 1,000 examples per task).",
        "Means ± standard deviations over seeds; every number comes from results/study.csv.",
    ]
    for grid, (tasks, _, seeds) in GRIDS.items():
        summary = summarise(rows, grid)
        if not summary:
            continue
        plot(results_dir, rows, summary, grid)
        learning_curves(results_dir, root, grid)
        parts += [
            "",
            f"## Grid `{grid}`: tasks {tasks}, seeds {seeds}",
            "",
            markdown_table(summary),
            "",
            f"![metrics](results/{grid}_metrics.png) ![trade-offs](results/{grid}_tradeoffs.png)",
            f"![learning curves](results/{grid}_learning_curves.png)",
        ]
    transfer = [
        json.loads(p.read_text())
        for p in (
            root / "transfer" / "topic_only" / "metrics.json",
            root / "transfer" / "add_sentiment" / "metrics.json",
        )
        if p.is_file()
    ]
    if len(transfer) == 2:
        before, after = transfer
        parts += [
            "",
            "## Transfer: topic alone, then + sentiment with the topic head frozen",
            "",
            "| step | topic test accuracy | sentiment test accuracy |",
            "|---|---|---|",
            f"| 1. `full`, topic only | {before['test']['topic']['accuracy']:.4f} | – |",
            f"| 2. `frozen_head_a` from step 1, + sentiment "
            f"| {after['test']['topic']['accuracy']:.4f} | "
            f"{after['test']['sentiment']['accuracy']:.4f} |",
        ]
    readme.write_text("\n".join(parts) + "\n")
    print(f"wrote {results_dir / 'study.csv'} ({len(rows)} runs), {readme} and plots")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", help=f"configs to run (default all): {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", help="e.g. 0,1 (default: each grid's own)")
    parser.add_argument("--grids", default=",".join(GRIDS), help=f"of: {', '.join(GRIDS)}")
    parser.add_argument("--runs-dir", default="study_runs")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--no-transfer", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--runner-args", default="", help="extra arguments for every run")
    args = parser.parse_args(argv)
    RUNNER_ARGS[:] = args.runner_args.split()
    root = Path(args.runs_dir)
    chosen = args.scenarios.split(",") if args.scenarios else list(CONFIGS)
    unknown = [c for c in chosen if c not in CONFIGS]
    grids = args.grids.split(",")
    if unknown or any(g not in GRIDS for g in grids):
        valid = f"configs: {', '.join(CONFIGS)}; grids: {', '.join(GRIDS)}"
        raise InputError(f"unknown config or grid; {valid}.")
    try:
        seeds_override = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise InputError(f"--seeds must be integers like 0,1,2, got {args.seeds!r}.") from None
    if not args.report_only:
        for grid in grids:
            tasks, configs, seeds = GRIDS[grid]
            for seed in seeds_override or seeds:
                for config in (c for c in configs if c in chosen):
                    print(f"[{grid}] {config} seed {seed}", flush=True)
                    run_one(root / grid / f"{config}-seed{seed}", tasks, config, seed)
        if not args.no_transfer:
            print("[transfer] topic alone, then + sentiment with the topic head frozen", flush=True)
            transfer_experiment(root)
    report(root, Path(args.results_dir), Path(args.results_dir).parent / "RESULTS.md")


if __name__ == "__main__":
    run_main(main)
