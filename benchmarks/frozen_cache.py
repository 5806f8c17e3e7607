"""Frozen backbone: heads trained on cached embeddings vs running the backbone every step.

Two `experiments.run --scenario frozen_backbone` runs with the same seed and budget, one
with the cache (the default) and one with `--no-cache`; compares seconds per epoch and
test metrics.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import write_result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-train-examples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp())
    results = {}
    # Without the cache, the same batches in the same order (no length buckets: cached
    # embeddings are not bucketed), so the two runs must reach the same metrics.
    for name, extra in (("cached", []), ("uncached", ["--no-cache", "--no-length-buckets"])):
        cmd = [
            sys.executable,
            "-m",
            "experiments.run",
            "--scenario",
            "frozen_backbone",
            "--tasks",
            "topic,sentiment",
            "--max-train-examples",
            str(args.max_train_examples),
            "--max-eval-examples",
            "1000",
            "--max-length",
            "64",
            "--epochs",
            str(args.epochs),
            "--seed",
            "0",
            "--verbose",
            "0",
            "--no-save-model",
            "--output-dir",
            str(root / name),
            *extra,
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        metrics = json.loads((root / name / "metrics.json").read_text())
        results[name] = {
            "epoch_seconds": metrics["epoch_seconds"],
            "data_seconds": metrics["data_seconds"],
            "wall_seconds": metrics["wall_seconds"],
            "test": {
                t: {k: metrics["test"][t][k] for k in ("accuracy", "macro_f1")}
                for t in metrics["tasks"]
            },
        }
        print(name, results[name]["epoch_seconds"], results[name]["test"])
    cached, uncached = (np.median(results[n]["epoch_seconds"]) for n in ("cached", "uncached"))
    write_result(
        "frozen_cache",
        {
            "max_train_examples": args.max_train_examples,
            "epochs": args.epochs,
            "max_length": 64,
            **results,
            "epoch_speedup_median": float(uncached / cached),
            # Whole training time: data preparation (with the cache: plus embedding) + epochs.
            "speedup_including_cache_build": float(
                (sum(results["uncached"]["epoch_seconds"]) + results["uncached"]["data_seconds"])
                / (sum(results["cached"]["epoch_seconds"]) + results["cached"]["data_seconds"])
            ),
        },
    )


if __name__ == "__main__":
    main()
