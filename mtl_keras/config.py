"""`RunConfig`: every option of a training run, with its default, in one place."""

import copy
import dataclasses
import math
import os
import sys
import typing

from mtl_keras.data.pipeline import SAMPLING
from mtl_keras.encoding.pooling import POOLING
from mtl_keras.errors import InputError, InputTypeError
from mtl_keras.model.loss_weighting import LOSS_WEIGHTINGS, check_loss_weighting
from mtl_keras.model.matryoshka import widths
from mtl_keras.model.multitask import check_loss_weights
from mtl_keras.provenance import bf16_capable
from mtl_keras.tasks import DEFAULT_TASKS, TASKS, Task, resolve_tasks
from mtl_keras.training.scenarios import SCENARIOS, get_scenario
from mtl_keras.training.schedules import SCHEDULES

MAX_EPOCHS = 10_000  # a typo guard: more epochs than this is never meant
PRESET_ENV = "MTL_KERAS_PRESET"  # a default for `preset`, like MTL_KERAS_DATA_DIR for data
INF = math.inf
# (field, lowest, highest, lowest allowed, highest allowed): the range of every number.
RANGES = (
    ("epochs", 1, MAX_EPOCHS, True, True),
    ("max_steps", 1, INF, True, False),
    ("batch_size", 1, INF, True, False),
    ("max_length", 2, INF, True, False),
    ("max_train_examples", 1, INF, True, False),
    ("max_eval_examples", 1, INF, True, False),
    ("seed", 0, 2**32 - 1, True, True),
    ("logical_cpus", 0, 64, True, True),
    ("cluster_timeout", 1, INF, True, False),
    ("learning_rate", 0, INF, False, False),
    ("weight_decay", 0, INF, True, False),
    ("dropout", 0, 1, True, False),
    ("temperature", 0, INF, False, False),
    ("frozen_layers", 0, INF, True, False),
    ("unfreeze_every", 1, INF, True, False),
    ("layer_decay", 0, 1, False, True),
    ("head_lr_multiplier", 0, INF, False, False),
    ("warmup_ratio", 0, 1, True, False),
    ("gradient_accumulation_steps", 1, 1024, True, True),
    ("patience", 0, MAX_EPOCHS, True, True),
    ("lora_rank", 1, INF, True, False),
)


DISTRIBUTIONS = ("none", "mirrored", "data_parallel")


def option(default, help=None, *, choices=None, flag=None, values=None, knob=False):
    """A `RunConfig` field with what its command-line option needs, in one place.

    `experiments.run` makes one option per field from this (the idea of Hugging Face's
    `HfArgumentParser`): `--<field-name>` with this help, default and choices; `flag`
    names a switch that turns a True default off; `values` makes a dict field read
    `task=value,...` of that type; `knob` lists it under the scenario knobs.
    """
    metadata = {"help": help, "choices": choices, "flag": flag, "values": values, "knob": knob}
    if callable(default):  # a mutable default (dict): one new object per config
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


PRECISIONS = ("float32", "mixed_bfloat16")  # Keras dtype policies a run trains under


def check_precision(precision):
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose from: {', '.join(PRECISIONS)}.")
    if precision == "mixed_bfloat16" and bf16_capable() is False:
        raise InputError("--precision mixed_bfloat16 needs a CPU with AVX-512 BF16 or AMX, which "
                         "this one lacks: train in float32 (the default).")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One training run: what to train, on what, how, and where its files go.

    Checked when made: a bad value raises `InputError` naming the option, before any
    weights or data load. `experiments.run` maps each `--option-name` to the field
    `option_name`; `dataclasses.replace(config, epochs=5)` makes a variant.
    """

    scenario: str = option("full", f"one of: {', '.join(SCENARIOS)}")
    tasks: tuple = option(
        DEFAULT_TASKS, f"comma-separated: {', '.join(TASKS)} (beside or instead of your own: "
        "--task); in Python also `Task` objects (`mtl_keras.tasks.from_files`)"
    )  # fmt: skip
    epochs: int = option(3)
    max_steps: int | None = option(
        None, "stop after N training steps (batches) in all, the schedule over them: each "
        "epoch runs N // epochs steps (at most one pass over the data)"
    )  # fmt: skip
    batch_size: int = option(32)
    max_length: int = option(128, "word pieces per text, [CLS]/[SEP] included")
    learning_rate: float | None = option(None, "default: the scenario's own (see scenarios.py)")
    weight_decay: float = option(0.01)
    schedule: str = option("linear", "after the warm-up: linear or cosine decay to 0, or "
                           "constant", choices=SCHEDULES)  # fmt: skip
    warmup_ratio: float = option(0.1, "share of the steps that warm the learning rate up")
    gradient_accumulation_steps: int = option(1, "batches whose gradients make one update")
    patience: int | None = option(
        None, "early stopping: epochs without a better validation score (keeps the best)"
    )
    dropout: float = option(0.1, "before each head")
    max_train_examples: int | None = option(None, "per task (default: all)")
    train_examples: dict = option(
        dict, "per-task caps over --max-train-examples, e.g. sentiment=250; 0 holds a task: "
        "its head is kept frozen and measured, not trained (training tasks one after another)",
        values=int,
    )  # fmt: skip
    max_eval_examples: int | None = option(None, "per task and split (default: all)")
    pooling: str = option("mean", "sentence embedding", choices=tuple(POOLING))
    sampling: str = option("proportional", "how tasks share the batches", choices=SAMPLING)
    temperature: float = option(2.0, "for --sampling temperature")
    loss_weights: dict = option(dict, "e.g. topic=1,sentiment=0.5", values=float)
    loss_weighting: str = option(
        "fixed", "fixed: the loss weights; uncertainty: learned per task (Kendall et al. "
        "2018)", choices=LOSS_WEIGHTINGS,
    )  # fmt: skip
    precision: str = option(
        "float32", "mixed_bfloat16: bfloat16 products, float32 weights, on CPUs with AVX-512 "
        "BF16 or AMX (docs/training.md)", choices=PRECISIONS,
    )  # fmt: skip
    seed: int = option(0)
    output_dir: str | os.PathLike | None = option(None, "default: runs/<scenario>-<timestamp>")
    preset: str | os.PathLike | None = option(
        None, "local keras-hub preset or Hugging Face BERT folder "
        f"(default: ${PRESET_ENV} or all-MiniLM-L6-v2)"
    )  # fmt: skip
    data_dir: str | os.PathLike | None = option(
        None, "prepared datasets (default: $MTL_KERAS_DATA_DIR or <TFDS dir>/mtl_keras)"
    )
    distribution: str = option(
        "none", "mirrored: split the batches over the CPU's logical devices; data_parallel: "
        "over processes and machines (JAX; see experiments.launch)", choices=DISTRIBUTIONS,
    )  # fmt: skip
    logical_cpus: int = option(0, "split the CPU into N logical devices (for mirrored)")
    cluster_timeout: int = option(
        120, "data_parallel: seconds to wait for every process to join before giving up"
    )
    verbose: str | int = option(
        "auto", "Keras fit verbosity: auto (a progress bar on a terminal, else one line per "
        "epoch), 0, 1 or 2"
    )  # fmt: skip
    init_from: str | os.PathLike | None = option(
        None, "a model.keras whose same-named layers start this run"
    )
    save_model: bool = option(True, "skip model.keras (studies)", flag="--no-save-model")
    cache_embeddings: bool = option(
        True, "run the frozen backbone every step instead of caching its embeddings",
        flag="--no-cache",
    )  # fmt: skip
    length_buckets: bool = option(
        True, "batch training examples in arrival order instead of by similar length",
        flag="--no-length-buckets",
    )  # fmt: skip
    measure_sts: bool = option(
        True, "skip the STS-B test Spearman of the embedding before and after training",
        flag="--no-sts",
    )  # fmt: skip
    frozen_layers: int = option(3, "frozen_lower: lower k transformer layers", knob=True)
    unfreeze_every: int = option(1, "gradual_unfreeze: epochs per stage", knob=True)
    layer_decay: float = option(0.8, "llrd: factor per layer going down", knob=True)
    head_lr_multiplier: float | None = option(
        None, "the heads' factor on the learning rate (default: the scenario's)"
    )
    lora_rank: int = option(8, "lora: rank of the adapters", knob=True)
    matryoshka_dims: str | tuple = option(
        "", "Matryoshka: pair and contrastive tasks also train the embedding cut to its "
        "first k values, e.g. 384,256,128,64 (the full width always trains)"
    )  # fmt: skip
    matryoshka_weights: str | tuple = option(
        "", "one loss weight per --matryoshka-dims width (default: 1 each)"
    )

    def __post_init__(self):
        self._check_types()
        tasks = resolve_tasks(self.tasks)
        # Built-in tasks by name (plain JSON in metrics.json), a user's as its `Task`.
        named = tuple(t.name if TASKS.get(t.name) == t else t for t in tasks)
        object.__setattr__(self, "tasks", named)
        if self.preset is None and os.environ.get(PRESET_ENV):
            object.__setattr__(self, "preset", os.environ[PRESET_ENV])
        get_scenario(self.scenario, tasks)
        if not all(isinstance(v, int | float) for v in self.loss_weights.values()):
            raise InputTypeError(
                f"loss_weights must map task names to numbers, got {self.loss_weights!r}."
            )
        check_loss_weights(self.loss_weights, tasks)
        for name, kind in (("matryoshka_dims", int), ("matryoshka_weights", float)):
            object.__setattr__(self, name, number_list(getattr(self, name), name, kind))
        widths(self.matryoshka_dims, self.matryoshka_weights, tasks)
        self._check_train_examples()
        self._check_numbers()
        self._check_choices()

    def _check_types(self):
        """Each field holds its annotated type (ints count as floats; bools only as bools)."""
        hints = typing.get_type_hints(RunConfig)
        for field in dataclasses.fields(self):
            value, hint = getattr(self, field.name), hints[field.name]
            allowed = set(typing.get_args(hint) or (hint,))
            if float in allowed:
                allowed.add(int)
            if field.name == "tasks":
                ok = isinstance(value, str) or (
                    isinstance(value, list | tuple)
                    and all(isinstance(t, str | Task) for t in value)
                )
            elif isinstance(value, bool):
                ok = bool in allowed
            else:
                ok = isinstance(value, tuple(allowed - {bool}))
            if not ok:
                kind = "str or list of str and Task" if field.name == "tasks" else hint
                kind = getattr(kind, "__name__", kind)
                raise InputTypeError(
                    f"{field.name} must be {kind}, got {type(value).__name__} {value!r}."
                )

    def _check_numbers(self):
        """Every number in its range (fields left at None are not checked)."""
        for name, low, high, low_in, high_in in RANGES:
            value = getattr(self, name)
            if value is None:
                continue
            above = value >= low if low_in else value > low
            below = value <= high if high_in else value < high
            if not (math.isfinite(value) and above and below):
                interval = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
                raise InputError(f"{option_flag(name)} must be in {interval}, got {value}.")

    def epoch_steps(self, steps):
        """The steps an epoch runs: `steps` (one pass over the data), fewer under max_steps."""
        return steps if self.max_steps is None else min(steps, self.max_steps // self.epochs)

    def _check_choices(self):
        if self.pooling not in POOLING:
            raise InputError(
                f"unknown pooling {self.pooling!r}; choose from: {', '.join(POOLING)}."
            )
        if self.schedule not in SCHEDULES:
            raise InputError(
                f"unknown schedule {self.schedule!r}; choose from: {', '.join(SCHEDULES)}."
            )
        if self.sampling not in SAMPLING:
            raise InputError(
                f"unknown sampling {self.sampling!r}; choose from: {', '.join(SAMPLING)}."
            )
        check_loss_weighting(self.loss_weighting)
        check_precision(self.precision)
        if self.max_steps is not None and self.max_steps < self.epochs:
            raise InputError(
                f"--max-steps {self.max_steps} is fewer than the {self.epochs} epochs: give "
                "at least one step per epoch (or fewer --epochs)."
            )
        if self.loss_weighting == "uncertainty" and self.loss_weights:
            raise InputError(
                "--loss-weights and --loss-weighting uncertainty: choose one (uncertainty "
                "weighting learns the weights)."
            )
        if self.distribution not in DISTRIBUTIONS:
            raise InputError(
                f"--distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                f"not {self.distribution!r}."
            )
        if self.distribution == "data_parallel" and self.output_dir is None:
            raise InputError(
                "--distribution data_parallel needs --output-dir, the same folder for every "
                "process (experiments.launch sets one)."
            )
        if self.verbose not in ("auto", 0, 1, 2):
            raise InputError(f"--verbose must be auto, 0, 1 or 2, got {self.verbose!r}.")
        for name in ("output_dir", "preset", "data_dir", "init_from"):
            value = getattr(self, name)
            if value is not None and not str(value):  # types: see _check_types
                raise InputError(f"{option_flag(name)} must be a non-empty path, got {value!r}.")

    def _check_train_examples(self):
        for name, cap in self.train_examples.items():
            if name not in self.task_names:
                raise InputError(
                    f"--train-examples names task {name!r}, which this run does not train; "
                    f"its tasks: {', '.join(self.task_names)}."
                )
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
                raise InputError(
                    f"--train-examples {name}={cap!r}: a cap must be a whole number >= 0."
                )
        if self.held_tasks and len(self.held_tasks) == len(self.task_names):
            raise InputError(
                "--train-examples holds every task at 0: nothing would train; give one task "
                "examples."
            )

    @property
    def held_tasks(self):
        """The tasks capped at 0 training examples: measured, not trained."""
        return tuple(t for t in self.task_names if self.train_examples.get(t) == 0)

    def train_cap(self, task):
        """How many training examples of `task` the run uses (None: all)."""
        return self.train_examples.get(task, self.max_train_examples)

    @property
    def learning_rate_or_default(self):
        return self.learning_rate or SCENARIOS[self.scenario].learning_rate

    @property
    def head_lr_multiplier_or_default(self):
        return self.head_lr_multiplier or SCENARIOS[self.scenario].head_lr_multiplier

    @property
    def fit_verbose(self):
        """Keras `fit` verbosity: "auto" is the progress bar on a terminal, and one line
        per epoch elsewhere (a log file, CI, a cluster job), where the bar would write a
        long line of every metric at every step."""
        if self.verbose != "auto":
            return self.verbose
        return 1 if sys.stdout.isatty() else 2

    @property
    def task_names(self):
        return [task if isinstance(task, str) else task.name for task in self.tasks]

    def to_dict(self):
        """Plain JSON values (for metrics.json): a user's task as its config."""
        tasks = [task if isinstance(task, str) else task.get_config() for task in self.tasks]
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}  # as JSON
        return {**copy.deepcopy({**values, "tasks": ()}), "tasks": tasks}


def number_list(value, name, kind):
    """`"384,256"` or a sequence -> a tuple of `kind` (a bad item: one line naming it)."""
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    try:
        return tuple(kind(v) if isinstance(v, str) else v for v in items)
    except ValueError:
        what = "whole numbers" if kind is int else "numbers"
        raise InputError(f"{option_flag(name)} {value!r}: give {what} separated by commas."
                         ) from None  # fmt: skip


def option_flag(name):
    """The command-line option of a `RunConfig` field: `max_length` -> `--max-length`."""
    return "--" + name.replace("_", "-")
