"""The study's grids: every scenario and task set it measures, as `RunConfig`s, and running
them. Each run is trained with `train` in this process, writing into
<runs_dir>/<grid>/<config>-seed<k>/ (its log in log.txt there); a run whose metrics.json
exists is skipped, so an interrupted study resumes where it stopped.
"""

import contextlib
import dataclasses
import json
import time
from itertools import combinations, permutations
from pathlib import Path

import keras

from mtl_keras.config import RunConfig
from mtl_keras.errors import InputError
from mtl_keras.tasks import TASKS
from mtl_keras.training.run import train

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
# weighting, `mtl_keras.model.loss_weighting`), config `<all four>-uncertainty<budget>`.
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
