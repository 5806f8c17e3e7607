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
    return best_rate(matmul_function(library, a, b), 2 * m * k * n, seconds)


def int8_gops(m, k, n, seconds=1.0):
    """Best int8 GOP/s of (m x k) uint8 @ (k x n) int8 products with int32 sums, by ONNX
    Runtime's MatMulInteger: the peak a dynamic int8 ONNX model's products run against
    (VNNI where the CPU has it)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    b = rng.integers(-127, 127, (k, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "int8",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
        [helper.make_tensor("b", TensorProto.INT8, [k, n], b.tobytes(), raw=True)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = rng.integers(0, 255, (m, k), dtype=np.uint8)
    return best_rate(lambda: session.run(None, {"a": a}), 2 * m * k * n, seconds)


def bf16_gflops(m, k, n, seconds=1.0):
    """Best GFLOP/s of an (m x k) @ (k x n) product that OpenVINO runs in bfloat16 (its
    inference precision on a CPU with AVX-512 BF16 or AMX), float32 in and out."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    a = ops.parameter([m, k], np.float32, name="a")
    b = ops.constant(rng.standard_normal((k, n), dtype=np.float32))
    model = ov.Model([ops.matmul(a, b, False, False)], [a])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    x = rng.standard_normal((m, k), dtype=np.float32)
    return best_rate(lambda: compiled(x), 2 * m * k * n, seconds)


def best_rate(run, operations, seconds):
    run()  # warm-up
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        run()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return operations / best / 1e9


PROBES = {"int8": int8_gops, "bf16": bf16_gflops}  # precision: its peak, per shape


def measure_low_precision():
    """{precision: {"per_shape": {shape: G(FL)OP/s}, "peak"}} for int8 and bf16, each in its
    own process; a probe that cannot run here (no OpenVINO, no bf16) is left out."""
    out = {}
    for precision in PROBES:
        try:
            row = run_side("benchmarks.peak", "--probe", precision)
        except Exception as error:  # noqa: BLE001 - reported, not fatal
            print(f"peak: {precision} left out ({type(error).__name__})")
            continue
        out[precision] = {"per_shape": row, "peak": max(row.values())}
    return out


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
    parser.add_argument("--probe", choices=list(PROBES), help="(internal) one precision")
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps({name: PROBES[args.probe](*shape) for name, shape in SHAPES.items()}))
        return
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
