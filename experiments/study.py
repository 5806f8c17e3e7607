"""The study: every scenario measured on the real data, over seeds, into tables and plots.

    python -m experiments.study                          # the whole grid (resumable)
    python -m experiments.study --scenarios full,llrd-0.8 --seeds 0
    python -m experiments.study --report-only            # rebuild results/ from finished runs
    python -m experiments.study --report-only --from-csv results/study.csv  # ... and a table
    python -m experiments.study --grids multitask --from-csv results/study.csv  # add to it
    python -m experiments.study --grids multitask --task mine=data/mine.csv  # your task too

A thin wrapper over `mtl_keras.study`: runs go into study_runs/<grid>/<config>-seed<k>/;
finished runs are skipped. Results: results/study.csv, RESULTS.md and results/*.png.
"""

import shlex
from pathlib import Path

from experiments.cli import ArgumentParser, run_main
from experiments.run import add_own_task_options, build_parser, config_from_args, own_tasks
from mtl_keras import study
from mtl_keras.errors import InputError


def runner_overrides(text):
    """The RunConfig fields that `experiments.run`-style options set away from the defaults."""
    parser = build_parser()
    given = config_from_args(parser.parse_args(shlex.split(text))).to_dict()
    default = config_from_args(parser.parse_args([])).to_dict()
    return {k: v for k, v in given.items() if v != default[k]}


def parse_list(text, valid, what):
    chosen = text.split(",")
    unknown = [c for c in chosen if c not in valid]
    if unknown:
        raise InputError(f"unknown {what} {unknown[0]!r}; choose from: {', '.join(valid)}.")
    return chosen


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    configs = ", ".join(study.CONFIGS)
    parser.add_argument("--scenarios", help=f"configs to run (default all): {configs}")
    parser.add_argument("--seeds", help="e.g. 0,1 (default: each grid's own)")
    parser.add_argument(
        "--grids", default=",".join(study.GRIDS), help=f"of: {', '.join(study.GRIDS)}"
    )
    parser.add_argument("--runs-dir", default="study_runs")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--no-transfer", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--from-csv",
        metavar="PATH",
        help="start the report from this study.csv's rows; the finished runs under --runs-dir "
        "replace the rows of the same grid, config and seed and add the others",
    )
    parser.add_argument("--runner-args", default="", help="experiments.run options for every run")
    add_own_task_options(
        parser, "The multitask grids train it alone, beside each built-in task and with all four"
    )
    args = parser.parse_args(argv)
    with study.own_tasks_in_grids(own_tasks(args)) as added:
        if added:
            print(f"your tasks add the multitask configs: {', '.join(added)}")
        run_study(args)


def run_study(args):
    overrides = runner_overrides(args.runner_args)
    chosen = parse_list(args.scenarios, study.CONFIGS, "config") if args.scenarios else None
    grids = parse_list(args.grids, study.GRIDS, "grid")
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise InputError(f"--seeds must be integers like 0,1,2, got {args.seeds!r}.") from None
    root, base = Path(args.runs_dir), None
    if args.from_csv:
        if not Path(args.from_csv).is_file():
            raise InputError(f"--from-csv {args.from_csv}: no such file; give a study.csv.")
        base = study.rows_from_csv(args.from_csv)
        missing = study.unreported_tasks(base)
        if missing:
            given, names = " ".join(f"--task {t}=PATH" for t in missing), ", ".join(missing)
            print(f"note: {args.from_csv} holds runs of tasks not given here ({names}); they "
                  f"stay in study.csv, and RESULTS.md reports them with {given}")  # fmt: skip
    if not args.report_only:
        study.run_grids(root, grids, chosen or list(study.CONFIGS), seeds, overrides)
        if not args.no_transfer:
            print("[transfer] topic alone, then + sentiment with the topic head frozen", flush=True)
            study.transfer_experiment(root, overrides)
    results = Path(args.results_dir)
    study.report(root, results, results.parent / "RESULTS.md", base_rows=base)


if __name__ == "__main__":
    run_main(main)
