"""Run `experiments.run` data-parallel as N processes on this machine (JAX backend).

    python -m experiments.launch --processes 2 -- --tasks topic,sentiment --epochs 2

Everything after `--` is `experiments.run`'s options; the launcher adds
`--distribution data_parallel` and, unless given, one `--output-dir` for all processes.
Each process gets its share of the cores. If a process dies, the others are stopped;
the same command again resumes from the last checkpoint. On several machines, set
Keras' variables per host instead (README, "More than one machine").
"""

import argparse
import datetime
import sys

from experiments.cli import ArgumentParser, run_main
from mtl_keras.distributed.launch import launch


def build_parser():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="processes on this machine")
    parser.add_argument("--port", type=int, default=None,
                        help="process 0's coordinator port (default: a free one)")  # fmt: skip
    parser.add_argument("--cores-per-process", type=int, default=None,
                        help="default: the machine's cores split evenly")  # fmt: skip
    parser.add_argument("run_options", nargs=argparse.REMAINDER,
                        help="-- then experiments.run's options")  # fmt: skip
    return parser


def run_command(options):
    """`experiments.run` with `options`, data-parallel, into one folder for every process."""
    options = options[1:] if options[:1] == ["--"] else list(options)
    if not any(o == "--output-dir" or o.startswith("--output-dir=") for o in options):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        options += ["--output-dir", f"runs/data-parallel-{stamp}"]
    return [sys.executable, "-m", "experiments.run", *options,
            "--distribution", "data_parallel"]  # fmt: skip


def main(argv=None):
    args = build_parser().parse_args(argv)
    code = launch(run_command(args.run_options), args.processes, args.port,
                  args.cores_per_process)  # fmt: skip
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    run_main(main)
