"""Where the time goes, per op, against the matmul peak: encode and a train step.

    python -m benchmarks.profile_ops

Runs `SentenceEncoder.encode` on real articles and a multi-task train step on real
topic + sentiment batches under TensorFlow's profiler, then sums each op's time over
the threads that ran ops, grouped by its place in the model (`GROUPS`: the attention
projections, the feed-forward, attention's batched products, GELU, softmax, layer
norm, transposes, ...). Each product group's GFLOP/s is its counted work
(`benchmarks.flops`) over its own time: is a kernel slow at these shapes, or is the
time spent outside the products? The machine's fp32 matmul peak is measured first in
the same run (`benchmarks.peak`).

Ops run one at a time here (one inter-op thread; each op still uses every core): with
two, independent ops such as the query, key and value projections ran side by side,
each stretched by sharing the cores, and their times overstated their cost. Encoding
articles measured the same speed either way (48.6 against 49.5 sentences/s, Intel Xeon).
"""

import argparse
import collections
import glob
import tempfile
import time

from benchmarks import peak
from benchmarks.common import write_result
from benchmarks.flops import MINILM, TRAIN_FACTOR

# Group of an op, from its place in the model (the path in its profiled name) and its
# type (after ':'): the first group whose test matches; unmatched ops are "other".
PROJECTIONS = ("/query", "/key", "/value", "/attention_output")
GROUPS = (
    ("projections (q, k, v, out)",
     lambda path, op: ("Einsum" in op or "MatMul" in op) and any(k in path for k in PROJECTIONS)),
    ("feed-forward", lambda path, op: "MatMul" in op and "feedforward" in path),
    ("attention products", lambda path, op: "MatMul" in op and "self_attention" in path),
    ("gelu", lambda path, op: "/Gelu/" in path or "Erf" in op),
    ("softmax and mask", lambda path, op: "softmax" in path or "Softmax" in op),
    ("layer norm", lambda path, op: "layer_norm" in path),
    ("transposes", lambda path, op: "Transpose" in op),
    ("dropout", lambda path, op: "dropout" in path.lower() or "Random" in op),
    ("biases, residuals",
     lambda path, op: op in ("BiasAdd", "BiasAddGrad", "Sum", "AddV2", "_MklAdd", "AddN")),
    ("optimizer", lambda path, op: "Assign" in op or "Apply" in op or "adam" in path.lower()),
)  # fmt: skip


def group_of(name):
    path, op = name.rsplit(":", 1)
    return next((group for group, test in GROUPS if test(path, op)), "other")


def op_times(logdir):
    """{op name: seconds summed over the op threads} of the newest trace in `logdir`; an
    op's name is "<layer path>/<op>:<op type>"."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    times = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and "::" not in name:  # an op, not the executor's own work
                    times[name] += event.duration_ps / 1e12
    return times


def profiled(work):
    """Run `work()` under the profiler; returns (op times, wall seconds)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as logdir:
        # The default level records the ops TensorFlow judges expensive: at MiniLM's sizes
        # every product and element-wise op; cheap ops it runs inline are left out.
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        work()
        seconds = time.perf_counter() - start
        tf.profiler.experimental.stop()
        times = op_times(logdir)
    return times, seconds


def product_flops(batch_shapes, config=MINILM):
    """FLOPs of forward passes over batches of (rows, padded length), per product group:
    the terms of `benchmarks.flops.forward_flops` (a test checks they add up to it)."""
    h, f, layers = config["hidden_dim"], config["intermediate_dim"], config["num_layers"]
    tokens = sum(rows * length for rows, length in batch_shapes)
    squares = sum(rows * length * length for rows, length in batch_shapes)
    flops = {
        "projections (q, k, v, out)": layers * tokens * 2 * 4 * h * h,
        "feed-forward": layers * tokens * 2 * 2 * h * f,
        "attention products": layers * squares * 2 * 2 * h,
    }
    return {k: float(v) for k, v in flops.items()}


def summary(times, seconds, flops, peak_gflops, unprofiled):
    """Per group: seconds, share of op time, and for the products GFLOP/s and % of peak.

    The profiler slows ops down (a train step's many small ops by 1.6x here), so every
    group's time is scaled to the same work timed without it (`unprofiled` seconds): the
    shares are the profile's. Its cost is per op, so the scaling overstates the small
    element-wise ops and understates the products' rates: the ceiling (every product at
    the peak, the rest as measured) is then, if anything, set too low.
    """
    groups = collections.Counter()
    for name, spent in times.items():
        groups[group_of(name)] += spent
    total = sum(groups.values())
    scale = unprofiled / total
    out = {"wall_seconds": seconds, "op_seconds": total, "unprofiled_seconds": unprofiled,
           "groups": {}}  # fmt: skip
    for group, spent in groups.most_common():
        row = {"seconds": spent * scale, "share_of_op_time": spent / total}
        if group in flops:
            row["gflops"] = flops[group] / row["seconds"] / 1e9
            row["fraction_of_peak"] = row["gflops"] / peak_gflops
        out["groups"][group] = row
    others = collections.Counter()
    for name, spent in times.items():
        if group_of(name) == "other":
            others[name.rsplit(":", 1)[1]] += spent * scale
    out["other_ops"] = dict(others.most_common(8))  # by op type
    work = sum(flops.values())
    out["overall_gflops"] = work / unprofiled / 1e9
    out["overall_fraction_of_peak"] = out["overall_gflops"] / peak_gflops
    rest = sum(row["seconds"] for group, row in out["groups"].items() if group not in flops)
    ideal = work / (peak_gflops * 1e9)
    out["rest_seconds"] = rest
    out["ceiling_fraction_of_peak"] = ideal / (ideal + rest)
    return out


def timed(work, repeats=2):
    """Best wall seconds of `work()` without the profiler."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def profile_encode(sentences):
    from benchmarks.encode import sentence_set, word_piece_lengths
    from benchmarks.flops import sorted_batches
    from mtl_keras import SentenceEncoder

    texts = sentence_set("articles", sentences)
    encoder = SentenceEncoder.pretrained(128)
    encoder.encode(texts[:64])  # trace
    times, seconds = profiled(lambda: encoder.encode(texts))
    unprofiled = timed(lambda: encoder.encode(texts))
    return times, seconds, unprofiled, product_flops(sorted_batches(word_piece_lengths(texts), 32))


def profile_train_step(steps):
    import keras

    from benchmarks.train_step import real_batches
    from mtl_keras.encoding import presets
    from mtl_keras.model.multitask import MultiTaskModel, compile_model
    from mtl_keras.tasks import resolve_tasks

    batches = real_batches(steps)
    model = MultiTaskModel(presets.load_backbone(presets.default_preset_dir()),
                           resolve_tasks("topic,sentiment"))  # fmt: skip
    compile_model(model, keras.optimizers.AdamW(5e-5))
    model.train_on_batch(*batches[0])  # trace

    def train():
        for batch in batches:
            model.train_on_batch(*batch)

    times, seconds = profiled(train)
    unprofiled = timed(train)
    forward = product_flops([b[0]["token_ids"].shape for b in batches])
    trained = {group: TRAIN_FACTOR * v for group, v in forward.items()}
    return times, seconds, unprofiled, trained


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=256, help="articles encoded")
    parser.add_argument("--steps", type=int, default=8, help="train steps")
    args = parser.parse_args(argv)
    limit = peak.measure()  # before this process starts TensorFlow's thread pools
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)  # see the module's docstring
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    result = {"matmul_peak": limit, "sentences": args.sentences, "steps": args.steps}
    for name, run in (("encode", lambda: profile_encode(args.sentences)),
                      ("train_step", lambda: profile_train_step(args.steps))):  # fmt: skip
        times, seconds, unprofiled, flops = run()
        result[name] = summary(times, seconds, flops, limit["peak_gflops"], unprofiled)
        print(f"\n{name}: {unprofiled:.2f} s ({seconds:.2f} s under the profiler, "
              f"{result[name]['op_seconds']:.2f} s of op time)")  # fmt: skip
        for group, row in result[name]["groups"].items():
            rate = f", {row['gflops']:.0f} GFLOP/s ({row['fraction_of_peak']:.0%} of peak)" \
                if "gflops" in row else ""  # fmt: skip
            print(f"  {group:27} {row['seconds']:6.2f} s {row['share_of_op_time']:6.1%}{rate}")
        print(f"  overall {result[name]['overall_fraction_of_peak']:.0%} of the peak; with "
              f"every product at the peak and the rest as measured, at most "
              f"{result[name]['ceiling_fraction_of_peak']:.0%}")  # fmt: skip
    write_result("profile_ops", result)


if __name__ == "__main__":
    main()
