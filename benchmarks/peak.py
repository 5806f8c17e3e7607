"""The machine's fp32 matrix-multiply peak, measured: what a benchmark's FLOPs are held to.

    python -m benchmarks.peak

numpy, TensorFlow and torch each in its own process, with their default threads (as the
benchmarks run), on a large square product and on the products MiniLM runs for a batch
of 32 x 128 word pieces (the feed-forward in and out, an attention projection). The
peak is the best GFLOP/s any of them reaches; the per-shape figures show whether a
library falls short at the model's own shapes.
"""

import argparse
import json
import time

import numpy as np

from benchmarks.common import run_side, write_result

TOKENS = 32 * 128
SHAPES = {  # name: (m, k, n) of an (m x k) @ (k x n) product
    "square_2048": (2048, 2048, 2048),
    "feed_forward_in": (TOKENS, 384, 1536),
    "feed_forward_out": (TOKENS, 1536, 384),
    "projection": (TOKENS, 384, 384),
}
LIBRARIES = ("numpy", "tensorflow", "torch")


def matmul_function(library, a, b):
    if library == "numpy":
        return lambda: a @ b
    if library == "tensorflow":
        import tensorflow as tf

        x, y = tf.constant(a), tf.constant(b)
        return lambda: tf.matmul(x, y).numpy()  # .numpy(): wait for the result
    import torch

    x, y = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: torch.matmul(x, y)


def gflops(library, m, k, n, seconds=1.0):
    """Best GFLOP/s of repeated (m x k) @ (k x n) products over about `seconds`."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    run = matmul_function(library, a, b)
    run()  # warm-up: thread pools, kernel choice
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        run()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return 2 * m * k * n / best / 1e9


def measure(libraries=LIBRARIES):
    """{"gflops": {library: {shape: GFLOP/s}}, "peak_gflops", "peak_from"}: each library
    in its own process; a library that is not installed is left out."""
    table = {}
    for library in libraries:
        try:
            table[library] = run_side("benchmarks.peak", "--library", library)
        except Exception as error:  # noqa: BLE001 - e.g. torch not in this environment
            print(f"peak: {library} left out ({type(error).__name__})")
    best = max(((v, lib, shape) for lib, row in table.items() for shape, v in row.items()),
               default=(float("nan"), None, None))  # fmt: skip
    return {"gflops": table, "peak_gflops": best[0], "peak_from": f"{best[1]} {best[2]}"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=LIBRARIES, help="(internal) one side")
    args = parser.parse_args(argv)
    if args.library:
        print(json.dumps({name: gflops(args.library, *shape) for name, shape in SHAPES.items()}))
        return
    result = measure()
    for library, row in result["gflops"].items():
        print(library, " ".join(f"{k} {v:.0f}" for k, v in row.items()), "GFLOP/s")
    print(f"peak {result['peak_gflops']:.0f} GFLOP/s ({result['peak_from']})")
    write_result("peak", result)


if __name__ == "__main__":
    main()
