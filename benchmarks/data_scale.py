"""Your own data at scale: a big `text,label` CSV of real text read, checked, split and
streamed into training (docs/own-data.md, "Big files").

    python -m benchmarks.data_scale                 # 1,000,000 rows
    python -m benchmarks.data_scale --rows 10000000 --shards 10

The file is made of the packaged real text: each row a tweet, then a few words of a BBC
sentence (so rows differ and are about 130 bytes, like a support ticket), labelled with
the tweet's sentiment. Each measurement runs in a process of its own, so its peak memory
is its own:

- read: `tasks.from_files` (read, check every row, split by hash, label set);
- first step: process start to the end of the first training step of a `RunConfig` run
  (`--max-length 64`, batch 32), with the stream's examples/s beside a train step's;
- end to end: `experiments.run --task mine=FILE --epochs 1 --max-steps 30
  --max-eval-examples 500 --max-length 64 --no-sts`, wall time and peak memory.
"""

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()

from benchmarks.common import peak_rss_mb, write_result  # noqa: E402
from mtl_keras.provenance import code_commit  # noqa: E402


def real_rows(rows, seed=0):
    """`rows` (text, label) rows of real text: a tweet and some words of a BBC sentence."""
    from mtl_keras.data import sources

    tweets, _ = sources.read_tweets()
    articles, _ = sources.read_bbc()
    words = [a["paragraph"].split() for a in articles]
    rng = random.Random(seed)
    for _ in range(rows):
        tweet = rng.choice(tweets)
        sentence = rng.choice(words)
        start = rng.randrange(max(1, len(sentence) - 6))
        tail = " ".join(sentence[start : start + rng.randrange(2, 7)])
        yield f"{tweet['text']} {tail}", tweet["label"]


def write_csv(path, rows, shards=1):
    """The file (or `shards` files train-00000.csv ... in folder `path`); returns it."""
    made = real_rows(rows)
    paths = [path] if shards == 1 else [path / f"train-{i:05d}.csv" for i in range(shards)]
    for index, file in enumerate(paths):
        file.parent.mkdir(parents=True, exist_ok=True)
        count = rows // shards + (index < rows % shards)
        with open(file, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["text", "label"])
            out.writerows(next(made) for _ in range(count))
    return path


def side_read(path):
    from mtl_keras.tasks import from_files, split_sizes

    started = time.perf_counter()
    task = from_files("mine", path)
    seconds = time.perf_counter() - started
    sizes = {s: d["examples"] for s, d in split_sizes(task).items()}
    return {"read_seconds": seconds, "splits": sizes, "labels": list(task.labels)}


def side_first_step(path, steps=20, stream_batches=200):
    """Process start -> first train step done; then the stream alone against train steps."""
    import numpy as np

    from mtl_keras import RunConfig
    from mtl_keras.tasks import from_files
    from mtl_keras.training.trainer import MultiTaskTrainer

    imported = time.perf_counter() - STARTED
    task = from_files("mine", path)
    read = time.perf_counter() - STARTED
    config = RunConfig(tasks=[task], epochs=1, max_length=64, max_eval_examples=500,
                       measure_sts=False, output_dir=tempfile.mkdtemp())  # fmt: skip
    trainer = MultiTaskTrainer(config)
    data = trainer.load_data()
    trainer.attach_optimizer(data.steps)
    batches = iter(data.train)
    trainer.fit_model.train_on_batch(*next(batches))
    first = time.perf_counter() - STARTED
    step_times = []
    for _ in range(steps):
        batch = next(batches)
        began = time.perf_counter()
        trainer.fit_model.train_on_batch(*batch)
        step_times.append(time.perf_counter() - began)
    began, stream = time.perf_counter(), iter(data.train)
    for _ in range(stream_batches):
        next(stream)
    stream_rate = stream_batches * config.batch_size / (time.perf_counter() - began)
    step_rate = config.batch_size / float(np.median(step_times))
    return {"import_seconds": imported, "read_done_seconds": read,
            "first_step_seconds": first, "stream_examples_per_s": stream_rate,
            "train_examples_per_s": step_rate, "stream_over_train": stream_rate / step_rate,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def run_side(side, path):
    argv = [sys.executable, "-m", "benchmarks.data_scale", "--side", side, "--file", str(path)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def end_to_end(path):
    """Wall time and peak memory (`/usr/bin/time -v`) of a short run on the file."""
    out = tempfile.mkdtemp()
    argv = ["/usr/bin/time", "-v", sys.executable, "-m", "experiments.run", "--task",
            f"mine={path}", "--epochs", "1", "--max-steps", "30", "--max-eval-examples", "500",
            "--max-length", "64", "--no-sts", "--output-dir", out, "--verbose", "0"]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - began
    peak = next(line for line in done.stderr.splitlines() if "Maximum resident" in line)
    return {"wall_seconds": wall, "peak_rss_mb": int(peak.split()[-1]) / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--side", choices=("read", "first-step"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args(argv)
    if args.side:
        result = side_read(args.file) if args.side == "read" else side_first_step(args.file)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as folder:
        name = "big.csv" if args.shards == 1 else "big"
        began = time.perf_counter()
        path = write_csv(Path(folder) / name, args.rows, args.shards)
        files = [path] if path.is_file() else sorted(path.glob("*.csv"))
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"{args.rows:,} rows, {size_mb:.0f} MB, written in {time.perf_counter() - began:.0f}s"
        )
        result = {"rows": args.rows, "shards": args.shards, "file_mb": size_mb,
                  "commit": code_commit(),
                  "read": run_side("read", path), "first_step": run_side("first-step", path)}  # fmt: skip
        print(json.dumps(result, indent=1))
        if not args.skip_end_to_end:
            result["end_to_end"] = end_to_end(path)
    print(json.dumps(result, indent=1))
    write_result("data_scale", {"runs": {**earlier_runs(), str(args.rows): result}})


def earlier_runs():
    """The runs of other sizes already measured on this CPU (one file holds every size),
    each with the commit it was made at."""
    from benchmarks.common import RESULTS, environment
    from mtl_keras.provenance import cpu_folder

    env = environment()
    folder = RESULTS / cpu_folder(env.get("cpu_model"), env.get("cpu_vector_flags", ()))
    if not (folder / "data_scale.json").is_file():
        return {}
    earlier = json.loads((folder / "data_scale.json").read_text())
    made = earlier["environment"].get("commit")  # runs recorded before each kept its own
    return {rows: {"commit": made, **run} for rows, run in earlier["runs"].items()}


if __name__ == "__main__":
    main()
