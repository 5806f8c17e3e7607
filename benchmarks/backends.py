"""The JAX backend against TensorFlow, and data-parallel scaling from 1 to 2 processes.

1. Train step: our topic + sentiment model (all-MiniLM-L6-v2, batch 32, real batches) on
   TensorFlow and on JAX, each in its own process, on the same batches padded to a
   multiple of 16 word pieces (what a JAX run feeds; JAX compiles each shape once, in
   the warm-up pass over every batch, outside the timing).
2. Scaling: the same short `experiments.run` (topic + sentiment, real data) as one
   process on all the cores and as two processes on half the cores each, both through
   `experiments.launch` (`--distribution data_parallel`, the same global batches).
   Examples/s from the last epoch's time (the first one compiles); efficiency is the
   two-process rate over the one-process rate (1.0: no loss from splitting the cores).

The train steps are held against the machine's fp32 matmul peak, measured first in the
same run (`benchmarks.peak`): GFLOP/s of the padded batches (`benchmarks.flops`).

    python -m benchmarks.backends
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import peak
from benchmarks.common import peak_rss_mb, run_side, write_result
from benchmarks.flops import training_flops
from benchmarks.train_step import keras_steps, real_batches
from mtl_keras.backends import JAX_LENGTH_STEP


def padded(batches):
    """Each batch's inputs padded with zeros to a multiple of the length step JAX runs at."""
    out = []
    for x, y, w in batches:
        length = x["token_ids"].shape[1]
        extra = -length % JAX_LENGTH_STEP
        x = {k: np.pad(v, ((0, 0), (0, extra))) for k, v in x.items()}
        out.append((x, y, w))
    return out


def one_side(batches_file, steps):
    batches = pickle.loads(Path(batches_file).read_bytes())
    rate = keras_steps(batches, steps, warmup=len(batches))  # every shape once
    print(json.dumps({"steps_per_s": rate, "peak_rss_mb": peak_rss_mb()}))


def launched_run(processes, folder, options):
    """Examples/s of the last epoch of an `experiments.launch` run, and its metrics."""
    command = [sys.executable, "-m", "experiments.launch", "--processes", str(processes),
               "--", *options, "--output-dir", str(folder)]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True,
                   env={**os.environ, "KERAS_BACKEND": "jax"})  # fmt: skip
    wall = time.perf_counter() - started
    metrics = json.loads((folder / "metrics.json").read_text())
    steps = metrics["optimizer_iterations"] // metrics["config"]["epochs"]
    examples = steps * metrics["config"]["batch_size"]
    return {"examples_per_s": examples / metrics["epoch_seconds"][-1], "wall_seconds": wall,
            "epoch_seconds": metrics["epoch_seconds"], "test": metrics["test"]}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--examples", type=int, default=400, help="per task, for the scaling")
    parser.add_argument("--batches", help="(internal) pickled batches for one side")
    args = parser.parse_args(argv)
    if args.batches:
        return one_side(args.batches, args.steps)
    batches = padded(real_batches(args.steps))
    step_flops = training_flops([b[0]["token_ids"].shape for b in batches]) / len(batches)
    limit = peak.measure()  # the machine's own limit, in this run, before the sides
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    sides = {}
    with tempfile.TemporaryDirectory() as folder:
        batches_file = str(Path(folder) / "batches.pkl")
        Path(batches_file).write_bytes(pickle.dumps(batches))
        for backend in ("tensorflow", "jax"):
            sides[backend] = run_side("benchmarks.backends", "--batches", batches_file,
                                      "--steps", args.steps, env={"KERAS_BACKEND": backend})  # fmt: skip
            rate = sides[backend]["steps_per_s"] * step_flops / 1e9
            sides[backend].update(gflops=rate, fraction_of_peak=rate / limit["peak_gflops"])
            print(f"{backend} train steps/s: {sides[backend]['steps_per_s']:.3f}, {rate:.0f} "
                  f"GFLOP/s, {rate / limit['peak_gflops']:.0%} of the peak")  # fmt: skip
        options = ["--tasks", "topic,sentiment", "--max-train-examples", str(args.examples),
                   "--max-eval-examples", "64", "--max-length", "64", "--epochs", "2",
                   "--no-sts", "--no-save-model", "--verbose", "0"]  # fmt: skip
        runs = {n: launched_run(n, Path(folder) / f"p{n}", options) for n in (1, 2)}
    for n, run in runs.items():
        print(f"{n} process(es): {run['examples_per_s']:.1f} examples/s")
    efficiency = runs[2]["examples_per_s"] / runs[1]["examples_per_s"]
    print(f"2 processes / 1 process: {efficiency:.2f}")
    write_result(
        "backends",
        {
            "batch_size": 32,
            "steps": args.steps,
            "mean_padded_length": float(np.mean([b[0]["token_ids"].shape[1] for b in batches])),
            "tensorflow_steps_per_s": sides["tensorflow"]["steps_per_s"],
            "jax_steps_per_s": sides["jax"]["steps_per_s"],
            "jax_over_tensorflow": sides["jax"]["steps_per_s"] / sides["tensorflow"]["steps_per_s"],
            "step_gflop": step_flops / 1e9,
            "matmul_peak": limit,
            "tensorflow_gflops": sides["tensorflow"]["gflops"],
            "jax_gflops": sides["jax"]["gflops"],
            "tensorflow_fraction_of_peak": sides["tensorflow"]["fraction_of_peak"],
            "jax_fraction_of_peak": sides["jax"]["fraction_of_peak"],
            "tensorflow_peak_rss_mb": sides["tensorflow"]["peak_rss_mb"],
            "jax_peak_rss_mb": sides["jax"]["peak_rss_mb"],
            "scaling_options": options,
            "one_process": runs[1],
            "two_processes": runs[2],
            "two_process_efficiency": efficiency,
        },
    )


if __name__ == "__main__":
    main()
