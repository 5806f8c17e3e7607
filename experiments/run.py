"""Train one multi-task model under one scenario on the real data, then report and save.

    python -m experiments.run --scenario frozen_head_a
    python -m experiments.run --scenario llrd --tasks topic,sentiment,ner --epochs 3
    python -m experiments.run --task tickets=data/tickets.csv --tasks topic

A thin wrapper: the options are made from `mtl_keras.RunConfig`'s fields, one each, with
the help, default and choices written beside the field (`--max-length` is `max_length`;
`--no-sts` turns `measure_sts` off), and `mtl_keras.train` does the work. Writes into
--output-dir (default runs/<scenario>-<timestamp>): model.keras, tokenizer/, metrics.json,
history.csv, logs/ (TensorBoard) and curves.png.
"""

import dataclasses
import typing

from experiments.cli import ArgumentParser, run_main
from mtl_keras import RunConfig, train
from mtl_keras.config import option_flag
from mtl_keras.errors import InputError
from mtl_keras.tasks import DEFAULT_TASKS, from_files
from mtl_keras.tasks.kinds import KINDS

FIELDS = dataclasses.fields(RunConfig)
HINTS = typing.get_type_hints(RunConfig)


def build_parser():
    """One option per `RunConfig` field, from the field's own help, default and choices."""
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    knobs = parser.add_argument_group("scenario knobs")
    for field in FIELDS:
        meta = field.metadata
        group = knobs if meta["knob"] else parser
        if meta["flag"]:  # a switch that turns a True default off
            group.add_argument(meta["flag"], dest=field.name, action="store_false",
                               help=meta["help"])  # fmt: skip
            continue
        kind = number_type(HINTS[field.name])
        group.add_argument(option_flag(field.name), type=kind,
                           default=command_line_default(field), choices=meta["choices"],
                           help=meta["help"])  # fmt: skip
    add_own_task_options(parser)
    return parser


def add_own_task_options(parser, what="Without --tasks, only these tasks train"):
    """--task NAME=PATH (repeatable), --task-kind and --task-columns (see `own_tasks`)."""
    own = parser.add_argument_group("your own tasks (mtl_keras.tasks.from_files)")
    own.add_argument("--task", action="append", default=[], metavar="NAME=PATH",
                     help="a task over your files: a .csv/.tsv/.jsonl/.conll file or a folder "
                     f"of train/validation/test files; repeatable. {what}")  # fmt: skip
    own.add_argument(
        "--task-kind",
        action="append",
        default=[],
        metavar="NAME=KIND",
        help=f"force a task's kind: {', '.join(KINDS)}",
    )
    own.add_argument(
        "--task-columns",
        action="append",
        default=[],
        metavar="NAME=OURS:THEIRS",
        help="map your column names, e.g. tickets=text:body,label:queue",
    )


def own_tasks(args):
    """The `Task`s of --task NAME=PATH, each read and checked now (before weights load)."""
    kinds = named_values(args.task_kind, "--task-kind")
    columns = {
        name: column_mapping(mapping)
        for name, mapping in named_values(args.task_columns, "--task-columns").items()
    }
    tasks = named_values(args.task, "--task")
    for option, names in (("--task-kind", kinds), ("--task-columns", columns)):
        stray = sorted(set(names) - set(tasks))
        if stray:
            raise InputError(f"{option} names {stray[0]!r}, which no --task NAME=PATH gives.")
    return [from_files(name, path, kinds.get(name), columns.get(name))
            for name, path in tasks.items()]  # fmt: skip


def column_mapping(text):
    """`text:body,label:queue` -> {"text": "body", "label": "queue"}."""
    pairs = [item.split(":", 1) for item in text.split(",") if item.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise InputError(f"--task-columns {text!r} is not OURS:THEIRS,... (e.g. text:body).")
    return {ours.strip(): theirs.strip() for ours, theirs in pairs}


def named_values(items, option):
    """["a=x", "b=y"] -> {"a": "x", "b": "y"}, refusing items without `=` and repeats."""
    out = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise InputError(f"{option} {item!r} is not NAME=VALUE.")
        if name.strip() in out:
            raise InputError(f"{option} gives {name.strip()!r} twice.")
        out[name.strip()] = value.strip()
    return out


def number_type(hint):
    """int or float for a numeric field (also when it may be None), else str."""
    kinds = set(typing.get_args(hint) or (hint,))
    return next((kind for kind in (int, float) if kind in kinds and str not in kinds), str)


def command_line_default(field):
    """The field's default as the command line writes it."""
    if field.default_factory is not dataclasses.MISSING:
        return ""  # a dict of task=value: none given
    return None if field.name == "tasks" else field.default  # tasks: see config_from_args


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
    options = vars(args).copy()
    for field in FIELDS:
        kind = field.metadata["values"]
        if kind is not None:
            flag = option_flag(field.name)
            options[field.name] = parse_task_values(options[field.name], flag, kind)
    options["verbose"] = args.verbose if args.verbose == "auto" else _verbosity(args.verbose)
    own = own_tasks(args)
    for name in ("task", "task_kind", "task_columns"):
        del options[name]
    # Without --tasks: the default tasks, or only your own when --task gives some.
    given = args.tasks if args.tasks is not None else ("" if own else ",".join(DEFAULT_TASKS))
    options["tasks"] = [*(n.strip() for n in given.split(",") if n.strip()), *own]
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
