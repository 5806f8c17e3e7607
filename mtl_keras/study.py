"""The study: every scenario measured on the real data, over seeds, into tables and plots.

Each run is a `RunConfig` trained with `train` in this process, writing into
<runs_dir>/<grid>/<config>-seed<k>/ (its log in log.txt there); a run whose metrics.json
exists is skipped, so an interrupted study resumes where it stopped. `report` turns the
finished runs into results/study.csv, RESULTS.md and results/*.png.
"""

import collections
import contextlib
import csv
import dataclasses
import json
import time
from itertools import combinations, permutations
from pathlib import Path

import keras
import numpy as np
import scipy.stats

from mtl_keras.config import RunConfig
from mtl_keras.errors import InputError
from mtl_keras.plots import (
    plot_affinity,
    plot_learning_curves,
    plot_size_curve,
    plot_sts_tradeoff,
    plot_study_metrics,
    plot_study_tradeoffs,
)
from mtl_keras.provenance import code_commit
from mtl_keras.tasks import TASKS, Task
from mtl_keras.trainer import train

# The per-run budget: sized so that one run takes about 2-3 minutes on 2 CPU cores.
BUDGET = {
    "epochs": 2,
    "max_length": 64,
    "batch_size": 32,
    "max_train_examples": 1000,
    "max_eval_examples": 1000,
}

# config name -> (scenario, RunConfig fields). Layer-wise decay at three values.
CONFIGS = {
    "full": ("full", {}),
    "frozen_all": ("frozen_all", {}),
    "frozen_backbone": ("frozen_backbone", {}),
    "frozen_head_a": ("frozen_head_a", {}),
    "frozen_head_b": ("frozen_head_b", {}),
    "frozen_lower": ("frozen_lower", {"frozen_layers": 3}),
    "gradual_unfreeze": ("gradual_unfreeze", {"unfreeze_every": 1}),
    "llrd-0.65": ("llrd", {"layer_decay": 0.65}),
    "llrd-0.8": ("llrd", {"layer_decay": 0.8}),
    "llrd-0.95": ("llrd", {"layer_decay": 0.95}),
    "lora": ("lora", {"lora_rank": 8}),
    "full-cls": ("full", {"pooling": "cls"}),
    "full-max": ("full", {"pooling": "max"}),
    "full-attention": ("full", {"pooling": "attention"}),
}
MAIN_CONFIGS = [c for c in CONFIGS if not c.startswith("full-")]  # llrd at three decays

# The learning-rate sweep that chose each scenario's defaults on validation:
# (scenario, learning rate, head multiplier); the run budget and schedule are the study's.
SWEEP = [
    ("full", 5e-5, 1), ("full", 5e-5, 20), ("full", 5e-5, 100),
    ("full", 1e-4, 1), ("full", 1e-4, 20), ("full", 1e-4, 100), ("full", 2e-4, 20),
    ("frozen_backbone", 1e-3, 1), ("frozen_backbone", 3e-3, 1), ("frozen_backbone", 1e-2, 1),
    ("frozen_backbone", 3e-2, 1),
    ("llrd", 1e-4, 20), ("llrd", 1e-4, 100), ("llrd", 2e-4, 20),
    ("lora", 5e-4, 1), ("lora", 5e-4, 20), ("lora", 5e-4, 100), ("lora", 1e-3, 1),
    ("lora", 1e-3, 20),
]  # fmt: skip
SWEEP_CONFIGS = [f"{scenario}-lr{rate:g}-h{head:g}" for scenario, rate, head in SWEEP]
for _name, (_scenario, _rate, _head) in zip(SWEEP_CONFIGS, SWEEP, strict=True):
    CONFIGS[_name] = (_scenario, {"learning_rate": _rate, "head_lr_multiplier": float(_head)})

# The data-size curve: sentiment training tweets (None: all of them), every BBC article.
SIZES = (250, 1000, 4000, None)
SIZE_SCENARIOS = ("frozen_backbone", "lora", "frozen_lower", "llrd-0.8", "full")
SIZE_CONFIGS = []


def _add_size_config(name, size, scenario, knobs):
    """`<name>-n<size>`: every BBC article and `size` sentiment tweets (None: all)."""
    SIZE_CONFIGS.append(f"{name}-n{size or 'all'}")
    caps = {"sentiment": size} if size else {}
    CONFIGS[SIZE_CONFIGS[-1]] = (
        scenario, {**knobs, "max_train_examples": None, "train_examples": caps}
    )  # fmt: skip


for _config in SIZE_SCENARIOS:
    for _size in SIZES:
        _add_size_config(_config, _size, *CONFIGS[_config])
# LoRA's default rate was chosen on 124-step runs; over all the tweets (1,968 steps) it
# broke the encoder, so the "all" point is also measured at a lower rate.
_add_size_config("lora-lr0.0002", None, "lora", {**CONFIGS["lora"][1], "learning_rate": 2e-4})

# Does training tasks together help? Each task alone, every pair, and all four, each task
# capped at the same number of training examples in every config (so a pair trains twice
# the steps of one task alone), fine-tuned with `full`'s defaults. Proportional sampling:
# every example once per epoch. Two budgets: `make run`'s (2,000 examples per task) and
# every training example at the full-data recipe's length and epochs.
MULTITASK_TASKS = ("topic", "sentiment", "ner", "similarity")
MULTITASK_BUDGETS = {
    "": {"max_train_examples": 2000},
    "-alldata": {"max_train_examples": None, "max_length": 128, "epochs": 3},
}
MULTITASK_SETS = [
    combo for n in (1, 2, len(MULTITASK_TASKS)) for combo in combinations(MULTITASK_TASKS, n)
]
# Loss weighting: the full set with its fixed weights against learned ones (uncertainty
# weighting, `mtl_keras.loss_weighting`), config `<all four>-uncertainty<budget>`.
LEARNED_WEIGHTS = "-uncertainty"


def multitask_config(tasks, budget="", weighting=""):
    """The multitask grid's config name of a task set: `topic+sentiment`, `ner-alldata`,
    `topic+sentiment+ner+similarity-uncertainty` (weighting `LEARNED_WEIGHTS`)."""
    return "+".join(t for t in study_tasks() if t in tasks) + weighting + budget


OWN_TASKS = {}  # a user's tasks in the multitask grids (`own_tasks_in_grids`): name -> Task


def study_tasks():
    """The multitask grids' tasks: the built-in four, then a user's (`own_tasks_in_grids`)."""
    return (*MULTITASK_TASKS, *OWN_TASKS)


@contextlib.contextmanager
def own_tasks_in_grids(tasks):
    """Within the block, a user's tasks (`Task`s, e.g. `tasks.from_files`) are in the
    multitask grids: each alone, beside each built-in task, and all of them with the
    built-in four, at each budget and with the grid's seeds; their rows read like the
    built-in ones (the affinity table gets their row and column). Yields the configs
    added; the grids are as before once the block ends.

        with study.own_tasks_in_grids([from_files("mine", "mine.csv")]):
            study.run_grids(root, ["multitask"], ["mine", "topic+mine"])
    """
    if not tasks:
        yield []
        return
    for task in tasks:
        if task.name in TASKS or task.name in OWN_TASKS:
            raise InputError(f"task {task.name!r} is in the study already; give it another name.")
    saved = dict(CONFIGS), {grid: list(configs) for grid, (_, configs, _) in GRIDS.items()}
    OWN_TASKS.update({task.name: task for task in tasks})
    added = []
    try:
        for budget, knobs in MULTITASK_BUDGETS.items():
            pairs = [(builtin, own) for own in tasks for builtin in MULTITASK_TASKS]
            for chosen in [*((own,) for own in tasks), *pairs, (*MULTITASK_TASKS, *tasks)]:
                by_name = {t if isinstance(t, str) else t.name: t for t in chosen}
                config = multitask_config(by_name, budget)
                in_order = [by_name[name] for name in study_tasks() if name in by_name]
                CONFIGS[config] = ("full", {**knobs, "tasks": in_order})
                GRIDS[f"multitask{budget}"][1].append(config)
                added.append(config)
        yield added
    finally:
        for task in tasks:
            OWN_TASKS.pop(task.name, None)
        CONFIGS.clear()
        CONFIGS.update(saved[0])
        for grid, configs in saved[1].items():
            GRIDS[grid][1][:] = configs


def unreported_tasks(rows):
    """The tasks that multitask rows trained but the study does not know now (a user's,
    given to an earlier study with `--task`): the report leaves their rows out."""
    grids = set(MULTITASK_GRIDS)
    named = {t for r in rows if r["grid"] in grids for t in r.get("tasks", "").split(",")}
    return sorted(named - {"", *study_tasks()})


def task_main_metric(name):
    """A task's main metric: a built-in's, or a user's task added to the study."""
    return (TASKS.get(name) or OWN_TASKS[name]).main_metric


def sequential_config(first, second, budget=""):
    """The config of training `first` alone, then `second` from that model with `first`
    held (its head kept frozen and measured): `topic-then-sentiment`."""
    return f"{first}-then-{second}{budget}"


# Sequential: each ordered pair, at the same examples per task as together and alone, so
# the two stages together train the steps of the pair trained together.
SEQUENTIAL = {
    sequential_config(first, second, budget): (first, second, budget)
    for budget in MULTITASK_BUDGETS
    for first, second in permutations(MULTITASK_TASKS, 2)
}

for _budget, _knobs in MULTITASK_BUDGETS.items():  # the tables' order: sets, weighting, orders
    for _tasks in MULTITASK_SETS:
        CONFIGS[multitask_config(_tasks, _budget)] = ("full", {**_knobs, "tasks": ",".join(_tasks)})
    CONFIGS[multitask_config(MULTITASK_TASKS, _budget, LEARNED_WEIGHTS)] = (
        "full", {**_knobs, "tasks": ",".join(MULTITASK_TASKS), "loss_weighting": "uncertainty"}
    )  # fmt: skip
    for _config, (_first, _second, _in_budget) in SEQUENTIAL.items():
        if _in_budget == _budget:
            CONFIGS[_config] = (
                "full", {**_knobs, "tasks": f"{_first},{_second}", "train_examples": {_first: 0}}
            )  # fmt: skip

# The shipped model's recipe (`make train-full`: every example, length 128, 3 epochs,
# temperature sampling, the full evaluation splits) without and with the STS-B pairs: does
# training on the pairs keep the embedding without costing the heads? (Over 3 seeds it did,
# so `make train-full` now runs `recipe+similarity`.)
RECIPE = {
    "max_train_examples": None,
    "max_eval_examples": None,
    "max_length": 128,
    "epochs": 3,
    "sampling": "temperature",
}
RECIPE_CONFIGS = {
    "recipe": "topic,sentiment,ner",
    "recipe+similarity": "topic,sentiment,ner,similarity",
}
for _config, _tasks in RECIPE_CONFIGS.items():
    CONFIGS[_config] = ("full", {**RECIPE, "tasks": _tasks})

# grid name -> (tasks, configs, seeds)
GRIDS = {
    "main": ("topic,sentiment", MAIN_CONFIGS, [0, 1, 2]),
    "ner": ("topic,ner", ["full", "frozen_backbone", "llrd-0.8", "lora"], [0]),
    # Does training the embedding on STS-B pairs keep it a good sentence encoder?
    "similarity": (
        "topic,sentiment,similarity",
        [
            "full",
            "frozen_all",
            "frozen_head_a",
            "frozen_lower",
            "gradual_unfreeze",
            "llrd-0.8",
            "llrd-0.95",
            "lora",
        ],
        [0],
    ),  # fmt: skip
    "pooling": ("topic,sentiment", ["full", "full-cls", "full-max", "full-attention"], [0]),
    "sweep": ("topic,sentiment", SWEEP_CONFIGS, [0]),
    "size": ("topic,sentiment", SIZE_CONFIGS, [0, 1, 2]),
    **{
        f"multitask{budget}": (
            ",".join(MULTITASK_TASKS),
            [multitask_config(tasks, budget) for tasks in MULTITASK_SETS]
            + [multitask_config(MULTITASK_TASKS, budget, LEARNED_WEIGHTS)]
            + [config for config, (*_, b) in SEQUENTIAL.items() if b == budget],
            [0, 1, 2],
        )
        for budget in MULTITASK_BUDGETS
    },
    "recipe": ("topic,sentiment,ner,similarity", list(RECIPE_CONFIGS), [0, 1, 2]),
}
MULTITASK_GRIDS = {f"multitask{budget}": budget for budget in MULTITASK_BUDGETS}
STS_COLUMNS = ("sts_after", "sts_change")  # STS-B test Spearman x 100 after training, change


def run_config(folder, tasks, config, seed, overrides=None, save_model=False):
    """The `RunConfig` of one study run: the budget, the config's knobs, then `overrides`."""
    scenario, knobs = CONFIGS[config]
    return RunConfig(
        **{
            **BUDGET,
            "scenario": scenario,
            "tasks": tasks,
            "seed": seed,
            "output_dir": str(folder),
            "verbose": 2,
            "save_model": save_model,
            **knobs,
            **(overrides or {}),
        }
    )


def run_one(config):
    """Train one study run (its output in log.txt); its metrics, or None if it failed.

    A run whose metrics.json exists already is read back instead of trained again.
    """
    folder = Path(config.output_dir)
    metrics_file = folder / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    keras.backend.clear_session()  # each run starts from a fresh graph and seed state
    with open(folder / "log.txt", "w") as log:
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                metrics = train(config).metrics
        except Exception as error:  # noqa: BLE001 - one failed run must not stop the study
            log.write(f"\nFAILED: {type(error).__name__}: {error}\n")
            print(f"  FAILED ({type(error).__name__}: {error}); see {folder / 'log.txt'}")
            return None
    print(f"  done in {time.perf_counter() - started:.0f}s", flush=True)
    return metrics


def run_grids(root, grids, configs, seeds=None, overrides=None):
    """Every (grid, seed, config) run not finished yet, in a stable order."""
    for grid in grids:
        tasks, grid_configs, grid_seeds = GRIDS[grid]
        for seed in seeds or grid_seeds:
            for config in (c for c in grid_configs if c in configs):
                print(f"[{grid}] {config} seed {seed}", flush=True)
                if config in SEQUENTIAL:
                    sequential_run(root, grid, config, seed, overrides)
                else:
                    folder = root / grid / f"{config}-seed{seed}"
                    run_one(run_config(folder, tasks, config, seed, overrides))


def sequential_run(root, grid, config, seed, overrides=None):
    """Train the first task alone (saved under <grid>-first/), then the second from that
    model with the first held: the second run is the config's row. Returns its metrics."""
    first, second, budget = SEQUENTIAL[config]
    alone = multitask_config([first], budget)
    first_dir = root / f"{grid}-first" / f"{alone}-seed{seed}"
    if run_one(run_config(first_dir, first, alone, seed, overrides, save_model=True)) is None:
        return None
    then = run_config(root / grid / f"{config}-seed{seed}", f"{first},{second}", config, seed,
                      overrides)  # fmt: skip
    return run_one(dataclasses.replace(then, init_from=str(first_dir / "model.keras")))


def transfer_experiment(root, overrides=None):
    """Topic alone, then add sentiment with the topic head frozen, starting from that model."""
    first_dir, second_dir = root / "transfer" / "topic_only", root / "transfer" / "add_sentiment"
    first = run_one(run_config(first_dir, "topic", "full", 0, overrides, save_model=True))
    if first is None:
        return None
    second = run_config(second_dir, "topic,sentiment", "frozen_head_a", 0, overrides)
    second = run_one(dataclasses.replace(second, init_from=str(first_dir / "model.keras")))
    return first, second


TRANSFER = "transfer"  # its runs' folders: topic_only, add_sentiment (seed 0)


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


def run_tasks(metrics):
    """The `Task`s of a finished run: built-in ones by name, a user's from its config."""
    return [TASKS[t] if isinstance(t, str) else Task.from_config(t)
            for t in metrics["config"]["tasks"]]  # fmt: skip


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
