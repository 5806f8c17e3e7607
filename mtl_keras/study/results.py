"""The study's report: markdown tables, sections per grid, plots, and RESULTS.md."""

import collections
import csv
from pathlib import Path

import numpy as np

from mtl_keras.errors import InputError
from mtl_keras.evaluation.plots import (
    plot_affinity,
    plot_learning_curves,
    plot_size_curve,
    plot_sts_tradeoff,
    plot_study_metrics,
    plot_study_tradeoffs,
)
from mtl_keras.provenance import code_commit
from mtl_keras.study.grids import (
    BUDGET,
    GRIDS,
    LEARNED_WEIGHTS,
    MULTITASK_BUDGETS,
    MULTITASK_GRIDS,
    MULTITASK_TASKS,
    RECIPE,
    SEQUENTIAL,
    SIZE_CONFIGS,
    SIZES,
    STS_COLUMNS,
    TRANSFER,
    multitask_config,
    study_tasks,
    task_main_metric,
)
from mtl_keras.study.rows import (
    baseline_of,
    main_column,
    paired_difference,
    paired_differences,
    rows_from_runs,
    summarise,
    write_csv,
)
from mtl_keras.tasks import TASKS


def mean_cell(values, mean_format, std_format=None):
    """`0.9772 ± 0.0079`: a (mean, std, n) over seeds; a single seed: its value alone."""
    mean, std, n = values
    return f"{mean:{mean_format}}" + (f" ± {std:{std_format or mean_format}}" if n > 1 else "")


def difference_cell(values, digits=4):
    """`+0.0123 ± 0.0045`, bold when the 95 % interval excludes 0; `–` for none."""
    if values is None:
        return "–"
    mean, std, _, low, high = values
    cell = f"{mean:+.{digits}f} ± {std:.{digits}f}"
    return f"**{cell}**" if low > 0 or high < 0 else cell


def differences_table(differences):
    """Markdown: mean paired difference ± its std; bold where the 95 % interval excludes 0."""
    columns = list(dict.fromkeys(c for values in differences.values() for c in values))
    lines = ["| config − baseline | seeds | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 2) + "|"]  # fmt: skip
    for config, values in differences.items():
        cells = [difference_cell(values.get(c), 2 if c in STS_COLUMNS else 4) for c in columns]
        n = next(iter(values.values()))[2] if values else 0
        lines.append(f"| {config} − {baseline_of(config)} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(summary, columns=None):
    """Markdown: one row per config, mean ± std per column (`–` where a config has none)."""
    columns = columns or list(dict.fromkeys(c for values in summary.values() for c in values))
    lines = ["| config | seeds | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for config, values in summary.items():
        cells = []
        for column in columns:
            if column not in values:
                cells.append("–")
                continue
            mean = values[column][0]
            if column == "trainable_params":
                cells.append(f"{mean:,.0f}")
            elif column == "seconds_per_epoch":
                cells.append(f"{mean:.0f}")
            else:
                cells.append(mean_cell(values[column], f".{2 if column in STS_COLUMNS else 4}f"))
        n = next(iter(values.values()))[2]
        lines.append(f"| {config} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def size_table(summary):
    """Markdown: sentiment test accuracy per scenario (rows) and number of tweets; with
    every tweet also topic accuracy and STS-B after training."""

    def cell(config, column, digits=4):
        if column not in summary.get(config, {}):
            return "–"
        return mean_cell(summary[config][column], f".{digits}f")

    sizes = [f"n{size or 'all'}" for size in SIZES]
    head = [f"{size or 'all'} tweets" for size in SIZES] + ["topic, all", "STS-B after, all"]
    lines = ["| scenario | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    bases = dict.fromkeys(c.rpartition("-n")[0] for c in SIZE_CONFIGS)
    for base in bases:
        cells = [cell(f"{base}-{size}", "sentiment_accuracy") for size in sizes]
        cells += [cell(f"{base}-nall", "topic_accuracy"), cell(f"{base}-nall", "sts_after", 2)]
        lines.append(f"| `{base}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def size_curves(rows, summary):
    """({scenario: [(sentiment training tweets, summary values)]}, metrics) of the size grid."""
    curves = {}
    for config, values in summary.items():
        tweets = np.mean([r["sentiment_train"] for r in rows if r["config"] == config])
        curves.setdefault(config.rpartition("-n")[0], []).append((float(tweets), values))
    metrics = [k for k in next(iter(summary.values())) if k.endswith("accuracy")]
    return {k: sorted(v, key=lambda p: p[0]) for k, v in curves.items()}, metrics


def grid_section(root, results_dir, rows, grid):
    """Markdown for one grid (table and plots), or [] when none of its runs finished."""
    tasks = GRIDS[grid][0]
    seeds = sorted({row["seed"] for row in rows if row["grid"] == grid})
    summary = summarise(rows, grid)
    if not summary:
        return []
    plot_study_metrics(results_dir / f"{grid}_metrics.png", summary)
    plot_study_tradeoffs(results_dir / f"{grid}_tradeoffs.png", summary)
    figures = f"![metrics](results/{grid}_metrics.png) ![trade-offs](results/{grid}_tradeoffs.png)"
    if "sts_after" in next(iter(summary.values())):
        plot_sts_tradeoff(results_dir / f"{grid}_sts.png", summary)
        figures += f" ![accuracy against STS-B](results/{grid}_sts.png)"
    if grid == "size":
        plot_size_curve(results_dir / "size_curve.png", *size_curves(rows, summary))
        figures += " ![data-size curve](results/size_curve.png)"
    curves = {}
    for history in sorted((Path(root) / grid).glob("*-seed0/history.csv")):
        with open(history) as handle:
            curves[history.parent.name.removesuffix("-seed0")] = list(csv.DictReader(handle))
    if curves:  # a report rebuilt from study.csv alone keeps the last curves' figure
        metrics = [(t, TASKS[t].main_metric) for t in tasks.split(",")]
        plot_learning_curves(results_dir / f"{grid}_learning_curves.png", curves, metrics)
    budget = []  # the grids that do not run at the study's budget say theirs
    if grid == "recipe":
        budget = [
            f"Per-run budget: `make train-full`'s, `{options(RECIPE)}` "
            "(None: every example; test metrics on the whole test splits).",
            "",
        ]
    section = [
        "",
        f"## Grid `{grid}`: tasks {tasks}, seeds {seeds}",
        "",
        provenance_line([r for r in rows if r["grid"] == grid]),
        "",
        *budget,
        markdown_table(summary),
    ]
    if grid == "size":
        section += ["", "Sentiment test accuracy by training tweets:", "", size_table(summary)]
    columns = [main_column(t) for t in tasks.split(",")] + ["sts_after"]
    differences = paired_differences(rows, grid, columns)
    if differences:
        section += [
            "",
            "Paired by seed against the baseline: mean difference ± its sample standard "
            "deviation; **bold** where the 95 % t-interval of the mean excludes 0.",
            "",
            differences_table(differences),
        ]
    return section + [
        "",
        figures,
        f"![learning curves](results/{grid}_learning_curves.png)",
    ]


def affinity(rows, grid):
    """{measured task: {added task or "all": paired difference}} of the multitask grid.

    Each cell is the measured task's main test metric trained beside the added task (or
    beside all the others) minus trained alone, paired by seed (`paired_difference`).
    "All" is the built-in four for a built-in task, and the four with a user's tasks for
    a user's task: the sets `own_tasks_in_grids` runs.
    """
    budget, tasks = MULTITASK_GRIDS[grid], study_tasks()
    out = {}
    for task in tasks:
        column, alone = main_column(task), multitask_config([task], budget)
        everything = MULTITASK_TASKS if task in MULTITASK_TASKS else tasks
        out[task] = {
            added: paired_difference(rows, grid, multitask_config(with_, budget), alone, column)
            for added, with_ in [
                *((other, (task, other)) for other in tasks if other != task),
                ("all", everything),
            ]
        }
    return out


def affinity_table(cells):
    """Markdown of `affinity`: rows the task measured, columns the task added."""
    added = [*study_tasks(), "all"]
    lines = ["| measured, added | " + " | ".join(f"+ {t}" for t in added) + " |",
             "|---" * (len(added) + 1) + "|"]  # fmt: skip
    for task, values in cells.items():
        row = ["" if t == task else difference_cell(values.get(t)) for t in added]
        metric = task_main_metric(task)
        lines.append(f"| {task} ({metric}) | " + " | ".join(row) + " |")
    return "\n".join(lines)


def multitask_section(results_dir, rows, grid):
    """Markdown for a multitask grid: each task set's metrics, and the task-affinity
    table and plot (what adding a task does to each task, paired by seed)."""
    summary = summarise(rows, grid)
    if not summary:
        return []
    grid_rows, budget = [r for r in rows if r["grid"] == grid], MULTITASK_GRIDS[grid]
    columns = [main_column(t) for t in study_tasks()]
    columns += ["sentiment_confident_accuracy", "sts_after", "seconds_per_epoch"]
    cells = affinity(rows, grid)
    plot_affinity(results_dir / f"{grid}_affinity.png", cells)
    seeds = sorted({r["seed"] for r in grid_rows})
    return [
        "",
        f"## Grid `{grid}`: each task alone, every pair and all four together, seeds {seeds}",
        "",
        provenance_line(grid_rows),
        "",
        f"Per-run budget: the study's, with the RunConfig fields {MULTITASK_BUDGETS[budget]}"
        " (None: every training example): each task has as many training examples in "
        "every task set, sampled in proportion (each example once per epoch).",
        "",
        markdown_table(summary, [c for c in columns if any(c in v for v in summary.values())]),
        "",
        "Task affinity: the measured task's test metric trained beside the added task minus "
        "trained alone, paired by seed (mean ± sample std); **bold** where the 95 % "
        "t-interval excludes 0. A pair trains twice the steps of one task alone, at the "
        "same examples per task.",
        "",
        affinity_table(cells),
        "",
        f"![task affinity](results/{grid}_affinity.png)",
        *loss_weighting_part(rows, grid, summary),
        *sequential_part(rows, grid, summary),
    ]


def sequential_part(rows, grid, summary):
    """Markdown: each task trained one after the other against trained alone and
    together, paired by seed; [] before such runs exist."""
    budget = MULTITASK_GRIDS[grid]
    orders = [c for c, (*_, b) in SEQUENTIAL.items() if b == budget and c in summary]
    if not orders:
        return []
    lines = [
        "",
        "Sequential: the first task trained alone, then the second from that model with the "
        "first task's head frozen (the learning-rate schedule starts again); each stage "
        "trains its task's examples, so the two stages train the steps of the pair "
        "together. Paired by seed; **bold** where the 95 % t-interval excludes 0. The "
        "first task after the second stage minus alone is what it forgot.",
        "",
        "| first, then second | seeds | first − alone | first − together | second − alone "
        "| second − together | STS-B after − together |",
        "|---" * 7 + "|",
    ]
    for config in orders:
        first, second, _ = SEQUENTIAL[config]
        together = multitask_config([first, second], budget)
        cells = []
        for task in (first, second):
            for base in (multitask_config([task], budget), together):
                cells.append(
                    difference_cell(paired_difference(rows, grid, config, base, main_column(task)))
                )
        cells.append(
            difference_cell(paired_difference(rows, grid, config, together, "sts_after"), 2)
        )
        seeds = next(iter(summary[config].values()))[2]
        lines.append(f"| {first} ({main_column(first)}), then {second} ({main_column(second)}) "
                     f"| {seeds} | " + " | ".join(cells) + " |")  # fmt: skip
    return lines


def loss_weighting_part(rows, grid, summary):
    """Markdown: all four tasks with learned loss weights minus with the fixed ones,
    paired by seed, and the weights they learned; [] before such runs exist."""
    budget = MULTITASK_GRIDS[grid]
    fixed = multitask_config(MULTITASK_TASKS, budget)
    learned = multitask_config(MULTITASK_TASKS, budget, LEARNED_WEIGHTS)
    if learned not in summary:
        return []
    columns = [main_column(t) for t in MULTITASK_TASKS] + ["sts_after"]
    cells = [
        difference_cell(
            paired_difference(rows, grid, learned, fixed, c), 2 if c in STS_COLUMNS else 4
        )
        for c in columns
    ]
    learned_weights = {
        t: summary[learned][f"{t}_loss_weight"]
        for t in MULTITASK_TASKS
        if f"{t}_loss_weight" in summary[learned]
    }
    weights = ", ".join(f"{t} {mean_cell(v, '.3g', '.2g')}" for t, v in learned_weights.items())
    fixed_weights = ", ".join(f"{t} {TASKS[t].loss_weight:g}" for t in MULTITASK_TASKS)
    return [
        "",
        f"Loss weighting, all four tasks: learned (uncertainty weighting, `{learned}`) minus "
        f"fixed (`{fixed}`: {fixed_weights}), paired by seed; **bold** where the 95 % "
        "t-interval excludes 0.",
        "",
        "| " + " | ".join(columns) + " |",
        "|---" * len(columns) + "|",
        "| " + " | ".join(cells) + " |",
        "",
        f"Learned factors exp(−s) at the end (mean ± sample std over seeds): {weights}.",
    ]


def run_counts(rows, column):
    """{value: runs} of a provenance column (`commit`, `cpu`), sorted, with "unrecorded"
    (runs made before the column existed) last."""
    counts = collections.Counter(r.get(column) or "unrecorded" for r in rows)
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] == "unrecorded", kv[0])))


def listed_counts(counts):
    """`a` (2), `b` (1): the values of `run_counts` and their runs."""
    return ", ".join(f"`{value}` ({n})" for value, n in counts.items())


def commits_line(rows):
    """Which commits the runs were made at; a table that mixes them says so."""
    commits = run_counts(rows, "commit")
    if len(commits) == 1:
        return f"Runs made at commit `{next(iter(commits))}`."
    return f"**These runs span {len(commits)} commits:** {listed_counts(commits)} runs."


def cpus_line(rows):
    """Which CPUs the runs were made on: seconds per epoch compare only between runs on one
    CPU, so a table that mixes CPUs, or holds runs whose CPU went unrecorded, says so."""
    cpus = run_counts(rows, "cpu")
    if set(cpus) == {"unrecorded"}:
        return (
            "CPU unrecorded: runs made before study.csv recorded it (results/notes.md "
            "names each session's machine)."
        )
    if len(cpus) == 1:
        return f"Runs made on the CPU `{next(iter(cpus))}`."
    return (
        f"**CPUs mixed or unrecorded:** {listed_counts(cpus)} runs; compare seconds per "
        "epoch only between runs on one CPU."
    )


def provenance_line(rows):
    """The commits and the CPUs a table's runs were made at."""
    return f"{commits_line(rows)} {cpus_line(rows)}"


def transfer_section(rows):
    runs = {r["config"]: r for r in rows if r["grid"] == TRANSFER}
    if not {"topic_only", "add_sentiment"} <= set(runs):
        return []
    before, after = runs["topic_only"], runs["add_sentiment"]
    return [
        "",
        "## Transfer: topic alone, then + sentiment with the topic head frozen",
        "",
        f"One seed. {provenance_line(list(runs.values()))}",
        "",
        "| step | topic test accuracy | sentiment test accuracy |",
        "|---|---|---|",
        f"| 1. `full`, topic only | {before['topic_accuracy']:.4f} | – |",
        f"| 2. `frozen_head_a` from step 1, + sentiment | {after['topic_accuracy']:.4f} | "
        f"{after['sentiment_accuracy']:.4f} |",
    ]


def options(fields):
    """`experiments.run` options for RunConfig fields: `--max-length 64 --epochs 2`."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in fields.items())


def report(root, results_dir, readme, commit=None, base_rows=None):
    """results/study.csv, plots and the markdown report, from the finished runs.

    `<results_dir>/notes.md`, when present, is appended as it is: the analysis written by
    hand survives a regenerated report. `commit` (default: this checkout's) is named in
    the header. `base_rows` (from `rows_from_csv`) are the rows of runs made elsewhere
    (another machine, an earlier session); a run under `root` with the same grid, config
    and seed replaces its row.
    """
    rows = {(r["grid"], r["config"], r["seed"]): r for r in base_rows or []}
    rows.update({(r["grid"], r["config"], r["seed"]): r for r in rows_from_runs(root)})
    rows = list(rows.values())
    if not rows:
        raise InputError(f"no finished runs under {root}: run the study first.")
    commit = commit or code_commit()
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    write_csv(results_dir / "study.csv", rows)
    budget = options(BUDGET)
    parts = [
        "# Study results",
        "",
        'Made by `python -m experiments.study` (see docs/training.md, "Training considerations")'
        + (f", report written at commit `{commit}`." if commit else "."),
        f"Per-run budget: `{budget}` (test metrics on up to 1,000 examples per task).",
        "Means ± sample standard deviations (ddof = 1) over seeds (a single seed: its "
        "value); every number comes from results/study.csv, which names each run's commit "
        "and, for the runs since it recorded one, its CPU.",
    ]
    for grid in GRIDS:
        if grid in MULTITASK_GRIDS:
            parts += multitask_section(results_dir, rows, grid)
        else:
            parts += grid_section(root, results_dir, rows, grid)
    parts += transfer_section(rows)
    notes = results_dir / "notes.md"
    if notes.is_file():
        parts += ["", notes.read_text().rstrip()]
    Path(readme).write_text("\n".join(parts) + "\n")
    print(f"wrote {results_dir / 'study.csv'} ({len(rows)} runs), {readme} and plots")
