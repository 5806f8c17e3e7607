"""Shared by the benchmarks: the real sentences, timing, memory, and writing results."""

import json
import platform
import resource
import statistics
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from mtl_keras.provenance import code_commit, cpu_folder, cpu_model

# One folder per CPU (`cpu_folder`): the same code measures differently on AMD and
# Intel, so a run on one CPU never overwrites the other's numbers.
RESULTS = Path(__file__).parent / "results"


def real_sentences(n=2000, data_dir=None):
    """n/2 BBC articles, then n/2 tweets (train splits): long and short text.

    A BBC text is its title and whole article since dataset 1.1.0 (5cefc0f; its first
    paragraph before), so it fills the encoder's 128 word pieces; a tweet has about 33.
    """
    from mtl_keras.data import load

    half = n // 2
    bbc = [
        e["text"].decode()
        for e in load("bbc_news", "train", data_dir).take(half).as_numpy_iterator()
    ]
    tweets = [
        e["text"].decode()
        for e in load("tweet_sentiment", "train", data_dir).take(n - len(bbc)).as_numpy_iterator()
    ]
    return bbc + tweets


def run_side(module, *options, env=None):
    """Run `python -m module options...` in its own process; the JSON of its last line.

    Each library is measured in a process of its own, so neither's thread pools slow the
    other; a side prints its result as the last line of its output.
    """
    import os
    import subprocess
    import sys

    argv = [sys.executable, "-m", module, *map(str, options)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def without_elementwise_work(model):
    """Switch off every dropout and the feed-forward GELU of a BERT model, in place.

    Not a usable model: a bound. The step that is left is the matrix multiplications
    (and layer norm, softmax, the optimizer), so no fusing or rewriting of dropout and
    GELU can make the real model faster than this. Attention keeps its code path (the
    attention layers still see their configured dropout rate; only their dropout layer
    does nothing).
    """
    import keras

    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
        if hasattr(layer, "_feedforward_intermediate_dense"):  # keras-hub TransformerEncoder
            layer._feedforward_intermediate_dense.activation = keras.activations.linear
    return model


def repeat_timing(fn, repeats=5):
    """Seconds of each of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def rate_summary(count, times):
    """Items per second: best (from the fastest call) and median."""
    return {
        "best": count / min(times),
        "median": count / statistics.median(times),
        "seconds": times,
    }


def peak_rss_mb():
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment():
    packages = [
        "tensorflow",
        "keras",
        "keras-hub",
        "torch",
        "sentence-transformers",
        "transformers",
    ]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    import os

    return {
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        **cpu_model(),
        "commit": code_commit() or "unknown",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_result(name, result):
    env = environment()
    folder = RESULTS / cpu_folder(env.get("cpu_model"), env.get("cpu_vector_flags", ()))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {"benchmark": name, "environment": env, **result}
    path.write_text(json.dumps(payload, indent=2, default=lambda o: float(np.asarray(o))) + "\n")
    print(f"wrote {path}")
    return path
