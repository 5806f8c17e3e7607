"""Hard negatives mined by an encoder, as sentence-transformers' `mine_hard_negatives`.

Each anchor of (anchor, positive) pairs is scored against every distinct positive of the
file (the corpus); the closest texts that are not its positive are its hard negatives.
Written here because sentence-transformers' miner runs on torch, which this project does
not install; the options and their meaning follow it.
"""

import collections
import json
from pathlib import Path

import numpy as np

from mtl_keras.artifacts import atomic_write
from mtl_keras.data.files import read_columns
from mtl_keras.data.progress import RowProgress
from mtl_keras.errors import InputError

SAMPLING = ("top", "random")
CHUNK = 1024  # anchors scored against the corpus at a time


def mine_hard_negatives(anchors, positives, encode, num_negatives=1, range_min=0,
                        range_max=None, margin=None, max_score=None, sampling="top",
                        seed=0):  # fmt: skip
    """([(anchor, positive, [negatives])], anchors left out for lack of candidates).

    `encode` maps a list of texts to unit vectors. For each anchor the candidates are the
    corpus texts ranked by cosine, never its positive, any other positive of the same
    anchor text, or the anchor itself. Of those, ranks `range_min` to `range_max` (0 is
    the closest; None: all) are kept; with `margin`, only those scoring below the
    positive's cosine minus `margin` (so a paraphrase of the positive is not a negative);
    with `max_score`, only those at or below it. `sampling` "top" takes the
    `num_negatives` closest of what is left, "random" draws them (fixed by `seed`).
    """
    check_options(num_negatives, range_min, range_max, margin, max_score, sampling)
    if len(anchors) != len(positives) or not anchors:
        raise InputError("mining needs (anchor, positive) pairs: give at least one.")
    corpus = list(dict.fromkeys(positives))
    index = {text: i for i, text in enumerate(corpus)}
    taken = collections.defaultdict(set)  # anchor text -> every positive it has
    for anchor, positive in zip(anchors, positives, strict=True):
        taken[anchor].add(index[positive])
    vectors, corpus_vectors = np.asarray(encode(list(anchors))), np.asarray(encode(corpus))
    own = np.array([index[p] for p in positives])
    rng, rows, dropped = np.random.default_rng(seed), [], 0
    progress = RowProgress("mining hard negatives")
    for start in range(0, len(anchors), CHUNK):
        scores = vectors[start : start + CHUNK] @ corpus_vectors.T
        for row, score in enumerate(scores, start):
            chosen = choose(score, own[row], taken[anchors[row]] | exclusions(index, anchors[row]),
                            num_negatives, range_min, range_max, margin, max_score, sampling,
                            rng)  # fmt: skip
            if chosen is None:
                dropped += 1
            else:
                rows.append((anchors[row], positives[row], [corpus[i] for i in chosen]))
        progress.update(start + len(scores), (start + len(scores)) / len(anchors))
    progress.done(len(anchors))
    return rows, dropped


def mine_file(path, output, encode, overwrite=False, **options):
    """Mine an (anchor, positive) file into `output`, JSONL rows of anchor, positive and
    `negative` (or `negative_1` ... `negative_n`): a contrastive task with hard negatives.
    Returns (rows written, anchors left out). `options`: `mine_hard_negatives`'."""
    output = Path(output)
    if output.exists() and (output.is_dir() or not overwrite):
        raise InputError(f"'{output}' exists; pass --overwrite to replace it.")
    if output.suffix.lower() != ".jsonl":
        raise InputError(f"'{output}' must end in .jsonl (the mined rows are JSON lines).")
    table = read_columns(path, "contrastive")  # every row checked, errors naming the line
    rows, dropped = mine_hard_negatives(table.pylist("anchor"), table.pylist("positive"),
                                        encode, **options)  # fmt: skip
    count = options.get("num_negatives", 1)
    names = ["negative"] if count == 1 else [f"negative_{i}" for i in range(1, count + 1)]
    lines = [json.dumps({"anchor": anchor, "positive": positive,
                         **dict(zip(names, found, strict=True))})
             for anchor, positive, found in rows]  # fmt: skip
    text = "".join(f"{line}\n" for line in lines)
    atomic_write(output, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return len(rows), dropped


def exclusions(index, anchor):
    return {index[anchor]} if anchor in index else set()


def choose(score, own, excluded, count, range_min, range_max, margin, max_score, sampling,
           rng):  # fmt: skip
    """The corpus indexes of one anchor's negatives (None: fewer candidates than `count`)."""
    positive, score = score[own], score.copy()
    score[list(excluded)] = -np.inf
    if margin is not None:
        score[score > positive - margin] = -np.inf
    if max_score is not None:
        score[score > max_score] = -np.inf
    ranked = np.argsort(-score, kind="stable")
    ranked = ranked[np.isfinite(score[ranked])][range_min:range_max]
    if len(ranked) < count:
        return None
    if sampling == "random":  # drawn from the window, kept closest first
        return sorted(rng.choice(ranked, size=count, replace=False), key=list(ranked).index)
    return list(ranked[:count])


def check_options(num_negatives, range_min, range_max, margin, max_score, sampling):
    if not isinstance(num_negatives, int) or num_negatives < 1:
        raise InputError(f"--num-negatives must be a whole number >= 1, got {num_negatives}.")
    if range_min < 0 or (range_max is not None and range_max <= range_min):
        raise InputError(f"--range-min {range_min} and --range-max {range_max}: give "
                         "0 <= range-min < range-max.")  # fmt: skip
    if margin is not None and max_score is not None:
        raise InputError("--margin and --max-score: choose one.")
    if sampling not in SAMPLING:
        raise InputError(f"unknown sampling {sampling!r}; choose from: {', '.join(SAMPLING)}.")
