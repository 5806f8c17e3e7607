"""The serving path: the exported SavedModel's signature, from raw strings.

Exports the pretrained encoder with a topic head (untrained; speed does not depend on
it), reloads the SavedModel as TF Serving would, then measures throughput at batch 32 on
2,000 real sentences and single-sentence latency (p50/p95). Both are held against the
machine's fp32 matmul peak, measured first in the same run (`benchmarks.peak`): the work
is counted from the batches as the signature ran them, in the order they came, each cut
to its longest sentence (`benchmarks.flops`).
"""

import argparse
import tempfile
import time

import numpy as np

from benchmarks import peak
from benchmarks.common import peak_rss_mb, rate_summary, real_sentences, repeat_timing, write_result
from benchmarks.encode import add_flop_rates, mean_word_pieces, word_piece_lengths
from benchmarks.flops import MINILM, arrival_batches, encode_flops, forward_flops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--latency-calls", type=int, default=300)
    args = parser.parse_args(argv)
    limit = peak.measure()  # before this process loads TensorFlow's thread pools
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    sentences = real_sentences(args.sentences)
    lengths = word_piece_lengths(sentences, 128)

    import tensorflow as tf

    from mtl_keras.encoding import presets
    from mtl_keras.export.serving import export_for_serving
    from mtl_keras.model.backbone import TunableBertBackbone
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.tasks import resolve_tasks

    preset = presets.default_preset_dir()
    backbone = TunableBertBackbone.from_backbone(presets.load_backbone(preset))
    backbone.inference_mode = True
    model = MultiTaskModel(backbone, resolve_tasks("topic"))
    folder = export_for_serving(
        model, presets.load_tokenizer(preset), f"{tempfile.mkdtemp()}/mtl/1", max_length=128
    )
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]

    batches = [tf.constant(sentences[i : i + 32]) for i in range(0, len(sentences), 32)]
    throughput = rate_summary(
        len(sentences), repeat_timing(lambda: [serve(text=b) for b in batches], 3)
    )
    print(f"serving signature, batch 32: {throughput['median']:.1f} sentences/s (median)")

    flops = encode_flops(lengths, 32, batching=arrival_batches)
    add_flop_rates(throughput, flops, len(sentences), limit["peak_gflops"])
    print(f"  {throughput['gflops_padded']:.0f} GFLOP/s, "
          f"{throughput['fraction_of_peak']:.0%} of the peak")  # fmt: skip

    rng = np.random.default_rng(0)
    latencies, picked = [], rng.integers(0, len(sentences), args.latency_calls + 10)
    for index in picked:
        start = time.perf_counter()
        serve(text=tf.constant([sentences[index]]))
        latencies.append(time.perf_counter() - start)
    latencies = np.array(latencies[10:]) * 1000  # first calls warm up
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"single sentence: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    # One sentence at a time: the calls' work over their summed time.
    single_flops = forward_flops([(1, lengths[i]) for i in picked[10:]], **MINILM)
    single_gflops = single_flops / (latencies.sum() / 1000) / 1e9
    write_result(
        "serving",
        {
            "sentences": len(sentences),
            "batch_size": 32,
            "max_length": 128,
            "throughput_batch_32": throughput,
            "single_sentence_latency_ms": {
                "p50": float(np.percentile(latencies, 50)),
                "p95": float(np.percentile(latencies, 95)),
                "calls": len(latencies),
                "gflops": single_gflops,
                "fraction_of_peak": single_gflops / limit["peak_gflops"],
            },
            "flops_batch_32": flops,
            "mean_word_pieces": mean_word_pieces(lengths),
            "matmul_peak": limit,
            "peak_rss_mb": peak_rss_mb(),
        },
    )


if __name__ == "__main__":
    main()
