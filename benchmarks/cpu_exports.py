"""Serving on the CPU, side by side: one model as the TF float32 `Predictor`, the TF Serving
SavedModel, and its ONNX (float32, int8) and OpenVINO (float32, bf16, int8) exports.

    python -m benchmarks.cpu_exports --model runs/full-<timestamp>/model.keras

On the same real sentences (`real_sentences`: BBC articles and tweets), in one process,
variants interleaved, medians of the repeats: sentences/s end to end from raw strings
(tokenization included; batches of 32 sorted by length, as `Predictor` makes them; the
SavedModel gets batches in arrival order, as callers send them) and of the model alone on
the same token ids; single-sentence latency p50/p95; MB on disk; the model's GFLOP/s
against the peak of its precision on this machine (fp32 matmul, bf16 matmul, int8
MatMulInteger: `benchmarks.peak`, measured first); and each export's quality against
the float32 model (embedding cosine, labels equal). Without --model it trains `make run`'s
job first. Then, where `benchmarks/.venv-st` exists (`make bench-st-venv`),
sentence-transformers' own backends on the same texts and calibration texts
(`benchmarks.st_backends`, in that venv's process, right after ours).
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import peak
from benchmarks.common import real_sentences, write_result
from benchmarks.encode import mean_word_pieces, word_piece_lengths
from benchmarks.exports import folder_mb
from benchmarks.flops import encode_flops

LENGTH = 128  # as the other serving benchmarks measure; BBC articles fill it
# name: (format, quantize, precision) of each export measured
EXPORTS = {
    "onnx float32": ("onnx", None, "f32"),
    "onnx int8": ("onnx", "int8", "f32"),
    "openvino float32": ("openvino", None, "f32"),
    "openvino bf16": ("openvino", None, "bf16"),
    "openvino int8": ("openvino", "int8", "f32"),
}
PEAK_OF = {"f32": "fp32", "bf16": "bf16", "int8": "int8"}
ST_PYTHON = Path(__file__).parent / ".venv-st" / "bin" / "python"  # the peer's own venv


def trained_model(folder):
    from mtl_keras import RunConfig, train

    config = RunConfig(scenario="full", tasks=("topic", "sentiment"), max_train_examples=2000,
                       max_length=64, epochs=2, verbose=0, output_dir=str(folder))  # fmt: skip
    return train(config).model_path


def make_exports(model, tokenizer, root, calibration):
    """{name: folder} of every export in EXPORTS that this CPU can run, converting once."""
    from mtl_keras.export.cpu import export_cpu, write_onnx
    from mtl_keras.provenance import bf16_capable

    onnx_file = root / "float.onnx"
    write_onnx(model, onnx_file)
    folders = {}
    for name, (fmt, quantize, precision) in EXPORTS.items():
        if precision == "bf16" and not bf16_capable():
            print(f"{name}: left out, this CPU has no bfloat16 instructions")
            continue
        started = time.perf_counter()
        folders[name], _ = export_cpu(model, tokenizer, root / name.replace(" ", "-"), fmt,
                                      max_length=LENGTH, quantize=quantize, precision=precision,
                                      calibration=calibration, onnx_source=onnx_file)  # fmt: skip
        print(f"{name}: exported in {time.perf_counter() - started:.0f} s")
    return folders


def variants(model, tokenizer, root, calibration):
    """{name: (end-to-end predict(texts), model-only forward(batch), folder)}."""
    import tensorflow as tf

    from mtl_keras.export.serving import export_for_serving
    from mtl_keras.predict import Predictor
    from mtl_keras.runtime.predictor import ExportedPredictor

    keras = Predictor(model, tokenizer, LENGTH)
    saved = export_for_serving(model, tokenizer, root / "tf-serving" / "1", max_length=LENGTH)
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]

    def served(texts):
        return [serve(text=tf.constant(texts[i : i + 32])) for i in range(0, len(texts), 32)]

    out = {"tf float32 Predictor": (keras.predict, keras._forward, None),
           "tf serving SavedModel": (served, None, saved)}  # fmt: skip
    for name, folder in make_exports(model, tokenizer, root, calibration).items():
        runtime = ExportedPredictor(folder, LENGTH)
        out[name] = (runtime.predict, runtime.engine, folder)
    return out


def model_batches(tokenizer_folder, texts):
    """The token ids of `texts` in sorted batches of 32, as every runtime's model sees them."""
    from mtl_keras.runtime.predictor import ExportedEncoder
    from mtl_keras.runtime.tokenizer import text_features

    runtime = ExportedEncoder(tokenizer_folder, LENGTH)
    return [x for _, x in runtime.batches(text_features(runtime.tokenizer, texts), 32)]


def timed(run, repeats_out):
    start = time.perf_counter()
    run()
    repeats_out.append(time.perf_counter() - start)


def measure(runs, texts, batches, repeats, latency_calls):
    """Interleaved timings: {name: {"end_to_end": [s], "model": [s], "latency_ms": [ms]}}."""
    singles = [[texts[i]] for i in np.random.default_rng(0).integers(0, len(texts), latency_calls)]
    times = {name: {"end_to_end": [], "model": [], "latency_ms": []} for name in runs}
    for predict, forward, _ in runs.values():  # warm-up: thread pools, traces, kernels
        predict(texts[:64])
        if forward is not None:
            forward(batches[0])
    for _ in range(repeats):
        for name, (predict, forward, _) in runs.items():  # interleaved: drift hits all alike
            timed(lambda predict=predict: predict(texts), times[name]["end_to_end"])
            if forward is not None:
                timed(lambda f=forward: [f(x) for x in batches], times[name]["model"])
            for single in singles[: latency_calls // repeats]:
                start = time.perf_counter()
                predict(single)
                times[name]["latency_ms"].append(1000 * (time.perf_counter() - start))
    return times


def quality(runs, texts):
    """Each variant's embedding cosine and labels against the float32 Predictor's."""
    from mtl_keras.export.cpu_quality import cosine_rows

    want = runs["tf float32 Predictor"][0](texts, embeddings=True)
    base = np.array([r["embedding"] for r in want])
    tasks = [k for k in want[0] if k not in ("text", "embedding")]
    out = {}
    for name in [n for n in runs if n in EXPORTS]:  # the exports' runtimes, already open
        got = runs[name][0](texts, embeddings=True)
        cosine = cosine_rows([r["embedding"] for r in got], base)
        out[name] = {"cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min()),
                     **{f"{t}_labels_equal": float(np.mean([a[t]["label"] == b[t]["label"]
                                                            for a, b in zip(got, want, strict=True)]))
                        for t in tasks}}  # fmt: skip
    return out


def summarise(times, runs, texts, flops, peaks):
    rows = {}
    for name, row in times.items():
        folder = runs[name][2]
        precision = EXPORTS.get(name, (None, None, "f32"))
        precision = precision[1] or precision[2]  # int8, bf16 or f32
        summary = {"end_to_end": len(texts) / float(np.median(row["end_to_end"])),
                   "latency_ms_p50": float(np.percentile(row["latency_ms"], 50)),
                   "latency_ms_p95": float(np.percentile(row["latency_ms"], 95)),
                   "mb": folder_mb(folder) if folder else None, "precision": precision}  # fmt: skip
        if row["model"]:
            summary["model_only"] = len(texts) / float(np.median(row["model"]))
            gflops = flops["padded"] * summary["model_only"] / len(texts) / 1e9
            peak_value = peaks.get(PEAK_OF[precision])
            summary["gflops"] = gflops
            summary["fraction_of_peak"] = gflops / peak_value if peak_value else None
        rows[name] = summary
    base = rows["tf float32 Predictor"]
    for summary in rows.values():
        summary["vs_tf_float32"] = summary["end_to_end"] / base["end_to_end"]
    return rows


def st_backends(texts, calibration, root, repeats, latency_calls, ours):
    """sentence-transformers' backends on the same texts ({variant: row}; {} without their
    venv), all-MiniLM-L6-v2 as we start from it, in that venv's own process, with `ours`
    ({name: export folder}) interleaved among them as "<name> (same process)"."""
    if not ST_PYTHON.exists():
        print(f"sentence-transformers' backends: left out, no {ST_PYTHON} (make bench-st-venv)")
        return {}
    from mtl_keras.encoding import presets

    for name, value in (("texts", texts), ("calibration", calibration)):
        (root / f"{name}.json").write_text(json.dumps(list(value)))
    argv = [str(ST_PYTHON), "-m", "benchmarks.st_backends",
            "--model-dir", str(presets.default_preset_dir()), "--texts", str(root / "texts.json"),
            "--calibration", str(root / "calibration.json"), "--work", str(root / "st"),
            "--repeats", str(repeats), "--latency-calls", str(latency_calls),
            *(f"--ours={name} (same process)={folder}" for name, folder in ours.items())]  # fmt: skip
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=3600,
                         env={**os.environ, "USE_TF": "0"}).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model.keras (default: train make run's job first)")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-calls", type=int, default=90)
    args = parser.parse_args(argv)
    fp32 = peak.measure(("numpy", "tensorflow"))  # before this process loads TensorFlow
    peaks = {"fp32": fp32["peak_gflops"],
             **{k: v["peak"] for k, v in peak.measure_low_precision().items()}}  # fmt: skip
    print("peaks (G(FL)OP/s):", {k: round(v) for k, v in peaks.items()})
    from mtl_keras.export.cpu_quality import validation_texts
    from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer

    root = Path(tempfile.mkdtemp(prefix="mtl-cpu-exports-"))
    model_path = Path(args.model) if args.model else trained_model(root / "run")
    model = load_model(model_path, compile=False)
    tokenizer = load_tokenizer(model_path.parent / TOKENIZER_DIR)
    texts = real_sentences(args.sentences)
    calibration = validation_texts(model, None, 300)
    runs = variants(model, tokenizer, root, calibration)
    batches = model_batches(runs["onnx float32"][2], texts)
    times = measure(runs, texts, batches, args.repeats, args.latency_calls)
    lengths = word_piece_lengths(texts, LENGTH)
    rows = summarise(times, runs, texts, encode_flops(lengths, 32), peaks)
    measured_quality = quality(runs, texts)
    ours = {n: runs[n][2] for n in ("openvino int8", "onnx int8") if n in runs}
    peers = st_backends(texts, calibration, root, args.repeats, args.latency_calls, ours)
    for name, row in peers.items():
        rows[name] = {
            **row,
            "vs_tf_float32": row["end_to_end"] / rows["tf float32 Predictor"]["end_to_end"],
        }
    theirs = [n for n in peers if n.startswith("st ")]
    fastest_peer = max(theirs, key=lambda n: peers[n]["end_to_end"], default=None)
    if fastest_peer:
        same = [n for n in peers if n not in theirs]  # ours, timed in their process
        best = max(same or EXPORTS, key=lambda n: rows.get(n, {}).get("end_to_end", 0))
        against = rows[best]["end_to_end"] / peers[fastest_peer]["end_to_end"]
        print(f"our fastest ({best}) against sentence-transformers' fastest ({fastest_peer}): "
              f"{against:.2f}x")  # fmt: skip
    write_result("cpu_exports", {"model": str(model_path), "trained_here": not args.model,
                                 "sentences": len(texts), "length": LENGTH,
                                 "mean_word_pieces": mean_word_pieces(lengths),
                                 "repeats": args.repeats, "peaks": peaks, "fp32_peak": fp32,
                                 "variants": rows, "quality": measured_quality,
                                 "sentence_transformers": sorted(peers),
                                 "fastest_peer": fastest_peer})  # fmt: skip


if __name__ == "__main__":
    main()
