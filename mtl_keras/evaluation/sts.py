"""STS Benchmark: how well an embedding's cosine similarity ranks sentence pairs.

The figure is Spearman's rank correlation (x 100) between the cosine of the two
sentences' embeddings and the human score, as MTEB and sentence-transformers report
it. Every run measures it before and after training: how much the encoder forgets.
"""

import numpy as np

from mtl_keras.data.loading import load
from mtl_keras.errors import InputError

STS_DATASET = "stsb"


def rank(values):
    """Ranks 1..n, ties sharing their average rank (as `scipy.stats.rankdata`).

    Written here because nothing else needs scipy; it is ten lines.
    """
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        if count > 1:
            ranks[order[start : start + count]] = start + (count + 1) / 2
    return ranks


def spearman(a, b):
    """Spearman's rank correlation of two equal-length sequences (nan if one is constant)."""
    ra, rb = rank(a), rank(b)
    if len(ra) != len(rb):
        raise InputError(f"spearman needs equal lengths, got {len(ra)} and {len(rb)}.")
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def sts_pairs(split="test", data_dir=None):
    """(sentences1, sentences2, scores 0-5) of one official STS-B split."""
    rows = list(load(STS_DATASET, split, data_dir).as_numpy_iterator())
    first = [row["sentence1"].decode("utf-8") for row in rows]
    second = [row["sentence2"].decode("utf-8") for row in rows]
    return first, second, np.array([row["score"] for row in rows], np.float64)


def sts_spearman(encode, pairs):
    """Cosine-similarity Spearman x 100 of `encode` on `pairs` (see `sts_pairs`).

    Args:
        encode: list of str -> L2-normalised embeddings, e.g. `SentenceEncoder.encode`.
            Each distinct sentence is embedded once.
    """
    first, second, scores = pairs
    unique = sorted(set(first) | set(second))
    vectors = dict(zip(unique, encode(unique), strict=True))
    cosine = [float(vectors[a] @ vectors[b]) for a, b in zip(first, second, strict=True)]
    return 100.0 * spearman(cosine, scores)


def sts_benchmark(encoder, split="test", data_dir=None):
    """{"spearman", "pairs", "split"}: a `SentenceEncoder` on one STS-B split."""
    pairs = sts_pairs(split, data_dir)
    return {"spearman": sts_spearman(encoder.encode, pairs), "pairs": len(pairs[2]), "split": split}
