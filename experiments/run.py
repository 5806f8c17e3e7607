"""Train one multi-task model under one scenario on the real data, then report and save.

    python -m experiments.run --scenario frozen_head_a
    python -m experiments.run --scenario llrd --tasks topic,sentiment,ner --epochs 3

A thin wrapper: the options map one to one onto `mtl_keras.RunConfig` (`--max-length` is
`max_length`), and `mtl_keras.train` does the work. Writes into --output-dir (default
runs/<scenario>-<timestamp>): model.keras, tokenizer/, metrics.json, history.csv, logs/
(TensorBoard) and curves.png.
"""

import argparse
import dataclasses

from experiments.cli import run_main
from mtl_keras import RunConfig, train
from mtl_keras.data.pipeline import SAMPLING
from mtl_keras.errors import InputError
from mtl_keras.pooling import POOLING
from mtl_keras.scenarios import SCENARIOS
from mtl_keras.schedules import SCHEDULES
from mtl_keras.tasks import TASKS

DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


# Options whose default is RunConfig's: (field, type, help).
NUMBERS = [
    ("epochs", int, None),
    ("batch_size", int, None),
    ("max_length", int, "word pieces per text, [CLS]/[SEP] included"),
    ("learning_rate", float, "default: the scenario's own (see scenarios.py)"),
    ("weight_decay", float, None),
    ("warmup_ratio", float, "share of the steps that warm the learning rate up"),
    ("gradient_accumulation_steps", int, "batches whose gradients make one update"),
    ("patience", int, "early stopping: epochs without a better validation score (keeps the best)"),
    (
        "head_lr_multiplier",
        float,
        "the heads' factor on the learning rate (default: the scenario's)",
    ),
    ("dropout", float, "before each head"),
    ("max_train_examples", int, "per task (default: all)"),
    ("max_eval_examples", int, "per task and split (default: all)"),
    ("temperature", float, "for --sampling temperature"),
    ("seed", int, None),
    ("logical_cpus", int, "split the CPU into N logical devices (for mirrored)"),
]
KNOBS = [
    ("frozen_layers", int, "frozen_lower: lower k transformer layers"),
    ("unfreeze_every", int, "gradual_unfreeze: epochs per stage"),
    ("layer_decay", float, "llrd: factor per layer going down"),
    ("lora_rank", int, "lora: rank of the adapters"),
]


def add_numbers(group, table):
    for name, kind, text in table:
        group.add_argument(
            f"--{name.replace('_', '-')}", type=kind, default=DEFAULTS[name], help=text
        )


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = p.add_argument
    add("--scenario", default=DEFAULTS["scenario"], help=f"one of: {', '.join(SCENARIOS)}")
    add("--tasks", default=",".join(DEFAULTS["tasks"]), help=f"comma-separated: {', '.join(TASKS)}")
    add_numbers(p, NUMBERS)
    add("--sampling", default=DEFAULTS["sampling"], choices=SAMPLING)
    add("--schedule", default=DEFAULTS["schedule"], choices=SCHEDULES, help="after the warm-up")
    add("--pooling", default=DEFAULTS["pooling"], choices=list(POOLING), help="sentence embedding")
    add("--loss-weights", default="", help="e.g. topic=1,sentiment=0.5")
    add(
        "--train-examples",
        default="",
        help="per-task caps over --max-train-examples, e.g. sentiment=250",
    )
    add("--output-dir", help="default: runs/<scenario>-<timestamp>")
    add(
        "--preset",
        help="local keras-hub preset or Hugging Face BERT folder "
        "(default: $MTL_KERAS_PRESET or all-MiniLM-L6-v2)",
    )
    add(
        "--data-dir",
        help="prepared datasets (default: $MTL_KERAS_DATA_DIR or <TFDS dir>/mtl_keras)",
    )
    add("--distribution", choices=["none", "mirrored"], default=DEFAULTS["distribution"])
    add("--verbose", default="auto",
        help="Keras fit verbosity: auto (a progress bar on a terminal, else one line per "
             "epoch), 0, 1 or 2")  # fmt: skip
    add("--init-from", help="a model.keras whose same-named layers start this run")
    add("--no-save-model", action="store_true", help="skip model.keras (studies)")
    add(
        "--no-cache",
        action="store_true",
        help="run the frozen backbone every step instead of caching its embeddings",
    )
    add(
        "--no-length-buckets",
        action="store_true",
        help="batch training examples in arrival order instead of by similar length",
    )
    add(
        "--no-sts",
        action="store_true",
        help="skip the STS-B test Spearman of the embedding before and after training",
    )
    add_numbers(p.add_argument_group("scenario knobs"), KNOBS)
    return p


def parse_task_values(text, option="--loss-weights", kind=float):
    """`topic=1,sentiment=0.5` -> {"topic": 1.0, "sentiment": 0.5}."""
    values = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            values[name.strip()] = kind(value)
        except ValueError:
            what = "number" if kind is float else "whole number"
            raise InputError(f"{option} item {item!r} is not task={what}.") from None
    return values


def config_from_args(args):
    """The `RunConfig` that a parsed command line asks for (checked on creation)."""
    options = {k: v for k, v in vars(args).items() if k in DEFAULTS}
    options["verbose"] = args.verbose if args.verbose == "auto" else _verbosity(args.verbose)
    options["loss_weights"] = parse_task_values(args.loss_weights)
    options["train_examples"] = parse_task_values(args.train_examples, "--train-examples", int)
    options["save_model"] = not args.no_save_model
    options["cache_embeddings"] = not args.no_cache
    options["length_buckets"] = not args.no_length_buckets
    options["measure_sts"] = not args.no_sts
    return RunConfig(**options)


def _verbosity(text):
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--verbose must be auto, 0, 1 or 2, got {text!r}.") from None


def parse_config(argv=None):
    return config_from_args(build_parser().parse_args(argv))


def main(argv=None):
    return train(parse_config(argv)).metrics


if __name__ == "__main__":
    run_main(main)
