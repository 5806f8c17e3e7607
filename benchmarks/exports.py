"""Exports: sentence-transformers and keras-hub reload parity; int8 vs float32 serving.

    python -m benchmarks.exports --model runs/full-<timestamp>/model.keras

Needs the benchmark venv (torch + sentence-transformers, `make bench`). Without --model it
first trains a short `full` run on topic + sentiment (1,000 examples per task, length 64,
one epoch). Reports, on the same machine and in one process: min cosine of
`SentenceTransformer(exported folder)` and of the keras-hub preset against the fine-tuned
model's own embedding; for the TF Serving export in float32 and each `--quantize` mode, the
SavedModel size, sentences/s through the signature (batch 32, median of repeats, runs
interleaved), its GFLOP/s against the machine's fp32 matmul peak measured first in the same
run (`benchmarks.peak`), one sentence's latency, and each task's accuracy on its full test
split.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import peak
from benchmarks.common import real_sentences, write_result
from benchmarks.encode import add_flop_rates, mean_word_pieces, word_piece_lengths
from benchmarks.flops import arrival_batches, encode_flops


def folder_mb(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def trained_model(folder):
    from mtl_keras import RunConfig, train

    config = RunConfig(scenario="full", tasks=("topic", "sentiment"), max_train_examples=1000,
                       max_length=64, epochs=1, verbose=0, output_dir=str(folder))  # fmt: skip
    return train(config).model_path


def min_cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def encoder_parity(model, tokenizer, sentences, root):
    from sentence_transformers import SentenceTransformer

    from mtl_keras import SentenceEncoder
    from mtl_keras.export.portable import export_keras_hub, export_sentence_transformers

    ours = SentenceEncoder(model.backbone, tokenizer, 128).encode(sentences)
    st_dir = export_sentence_transformers(model.backbone, tokenizer, root / "st", max_length=128)
    torch_model = SentenceTransformer(str(st_dir), device="cpu")
    theirs = torch_model.encode(sentences, batch_size=32, convert_to_numpy=True)
    hub_dir = export_keras_hub(model.backbone, tokenizer, root / "keras_hub")
    hub = SentenceEncoder.from_preset(hub_dir, 128).encode(sentences)
    return {
        "sentences": len(sentences),
        "sentence_transformers_min_cosine": min_cosine(ours, theirs),
        "keras_hub_min_cosine": min_cosine(ours, hub),
        "sentence_transformers_modules": [type(m).__name__ for m in torch_model],
    }


def test_split(task):
    from mtl_keras.data import load

    rows = list(load(task.dataset, "test").as_numpy_iterator())
    return [r["text"].decode() for r in rows], [task.labels[int(r["label"])] for r in rows]


def serving_comparison(model, tokenizer, sentences, lengths, root, repeats, peak_gflops,
                       latency_calls):  # fmt: skip
    import tensorflow as tf

    from mtl_keras.export.serving import QUANTIZATIONS, export_for_serving

    signatures, result = {}, {}
    for kind in ("float32", *QUANTIZATIONS):
        # 128, as BENCHMARKS.md measured it (the model trained at 64, now the default)
        folder = export_for_serving(model, tokenizer, root / kind / "1", max_length=128,
                                    quantize=None if kind == "float32" else kind)  # fmt: skip
        signatures[kind] = tf.saved_model.load(str(folder)).signatures["serving_default"]
        result[kind] = {"saved_model_mb": folder_mb(folder), "seconds": [], "latency_ms": []}
    batches = [tf.constant(sentences[i : i + 32]) for i in range(0, len(sentences), 32)]
    singles = [tf.constant([sentences[i]])
               for i in np.random.default_rng(0).integers(0, len(sentences), latency_calls)]  # fmt: skip
    for kind in signatures:  # warm-up
        [signatures[kind](text=b) for b in batches[:2] + singles[:5]]
    for _ in range(repeats):
        for kind, serve in signatures.items():  # interleaved, so drift hits all alike
            start = time.perf_counter()
            [serve(text=b) for b in batches]
            result[kind]["seconds"].append(time.perf_counter() - start)
            for single in singles[: latency_calls // repeats]:
                start = time.perf_counter()
                serve(text=single)
                result[kind]["latency_ms"].append(1000 * (time.perf_counter() - start))
    flops = encode_flops(lengths, 32, batching=arrival_batches)
    for kind, serve in signatures.items():
        row = result[kind]
        row["median"] = len(sentences) / float(np.median(row["seconds"]))  # sentences/s
        add_flop_rates(row, flops, len(sentences), peak_gflops)
        row["latency_ms_p50"], row["latency_ms_p95"] = (
            float(p) for p in np.percentile(row["latency_ms"], [50, 95])
        )
        for task in (t for t in model.tasks if t.kind == "sentence"):
            texts, gold = test_split(task)
            predicted = [
                label.decode()
                for i in range(0, len(texts), 64)
                for label in serve(text=tf.constant(texts[i : i + 64]))[
                    f"{task.name}_label"
                ].numpy()
            ]
            accuracy = float(np.mean([p == g for p, g in zip(predicted, gold, strict=True)]))
            row[f"{task.name}_test_accuracy"] = accuracy
            row[f"{task.name}_test_examples"] = len(texts)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model.keras (default: train a short run first)")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-calls", type=int, default=150)
    args = parser.parse_args(argv)
    limit = peak.measure()  # before this process loads TensorFlow's thread pools
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    from mtl_keras.saving import TOKENIZER_DIR, load_model, load_tokenizer

    root = Path(tempfile.mkdtemp(prefix="mtl-exports-"))
    model_path = Path(args.model) if args.model else trained_model(root / "run")
    model = load_model(model_path, compile=False)
    tokenizer = load_tokenizer(model_path.parent / TOKENIZER_DIR)
    sentences = real_sentences(args.sentences)
    parity = encoder_parity(model, tokenizer, sentences, root)
    print(parity)
    lengths = word_piece_lengths(sentences, 128)
    serving = serving_comparison(model, tokenizer, sentences, lengths, root, args.repeats,
                                 limit["peak_gflops"], args.latency_calls)  # fmt: skip
    print(serving)
    write_result("exports", {"model": str(model_path), "trained_here": not args.model,
                             "parity": parity, "serving": serving, "matmul_peak": limit,
                             "sentences": len(sentences),
                             "mean_word_pieces": mean_word_pieces(lengths)})  # fmt: skip


if __name__ == "__main__":
    main()
