"""Write BENCHMARKS.md from benchmarks/results/*.json."""

import json
from pathlib import Path

from benchmarks.common import RESULTS


def load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main():
    lines = [
        "# Benchmarks",
        "",
        "Made by `make bench` (each script writes `benchmarks/results/<name>.json`; this table is",
        "`python -m benchmarks.report`). Speeds are ratios against a peer measured in the same run",
        "on the same machine. 2-core CPU numbers are noisy: compare within one run only.",
        "",
    ]
    encode = load("encode")
    if encode:
        env = encode["environment"]
        lines += [
            f"Machine: {env['cpus']} CPUs ({env['machine']}), Python {env['python']}, "
            + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
            + f"; {env['date']}.",
            "",
            "## Encode (`python -m benchmarks.encode`)",
            "",
            f"{encode['sentences']} real sentences (BBC + tweets), batch {encode['batch_size']}, "
            f"max length {encode['max_length']}, {encode['repeats']} repeats, one process.",
            "",
            "| encoder | sentences/s (median) | best | peak RSS after (MB) |",
            "|---|---|---|---|",
        ]
        for key, label in (
            ("mtl_keras", "mtl_keras `SentenceEncoder.encode`"),
            ("sentence_transformers", "sentence-transformers `encode` (torch)"),
        ):
            r = encode[key]
            lines.append(
                f"| {label} | {r['median']:.1f} | {r['best']:.1f} | {r['peak_rss_mb_after']:.0f} |"
            )
        lines += [
            "",
            f"Ratio (median): **{encode['ratio_median']:.2f}x**; outputs agree to min cosine "
            f"{encode['min_cosine_between_outputs']:.6f}.",
        ]
    serving = load("serving")
    if serving:
        lat = serving["single_sentence_latency_ms"]
        lines += [
            "",
            "## Serving signature (`python -m benchmarks.serving`)",
            "",
            f"Exported SavedModel called from raw strings: {serving['throughput_batch_32']['median']:.1f} "
            f"sentences/s at batch 32 (median); one sentence: p50 {lat['p50']:.1f} ms, "
            f"p95 {lat['p95']:.1f} ms over {lat['calls']} calls.",
        ]
    train = load("train_step")
    if train:
        lines += [
            "",
            "## Train step (`python -m benchmarks.train_step`)",
            "",
            f"Topic + sentiment, batch 32, mean padded length {train['mean_padded_length']:.0f}: "
            f"Keras {train['keras_steps_per_s']:.2f} steps/s vs torch + transformers "
            f"{train['torch_steps_per_s']:.2f} steps/s ({train['torch_threads']} threads): "
            f"**{train['ratio']:.2f}x**.",
        ]
    cache = load("frozen_cache")
    if cache:
        c, u = cache["cached"], cache["uncached"]
        lines += [
            "",
            "## Frozen backbone: cached embeddings (`python -m benchmarks.frozen_cache`)",
            "",
            "| run | seconds per epoch | data prep (s) | topic test acc | sentiment test acc |",
            "|---|---|---|---|---|",
            f"| cached (default) | {', '.join(f'{s:.2f}' for s in c['epoch_seconds'])} "
            f"| {c['data_seconds']:.1f} | {c['test']['topic']['accuracy']:.4f} | "
            f"{c['test']['sentiment']['accuracy']:.4f} |",
            f"| `--no-cache` | {', '.join(f'{s:.2f}' for s in u['epoch_seconds'])} | {u['data_seconds']:.1f} | "
            f"{u['test']['topic']['accuracy']:.4f} | {u['test']['sentiment']['accuracy']:.4f} |",
            "",
            f"Per epoch: **{cache['epoch_speedup_median']:.0f}x** faster; whole training (data preparation, "
            f"embedding, {cache['epochs']} epochs): {cache['speedup_including_cache_build']:.1f}x.",
        ]
    Path("BENCHMARKS.md").write_text("\n".join(lines) + "\n")
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
