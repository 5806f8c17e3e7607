"""Matryoshka training against full-width training only, with the embedding cut to 256,
128 and 64 of its 384 values.

The same retrieval pairs as the hard-negatives study (`negatives.close_pairs`: STS-B's
pairs scored 4 or more) train a contrastive task with in-batch negatives, once as it is
and once with Matryoshka widths. Each saved model is then measured at every width on
data nothing here tunes on: retrieval on the test split's pairs (recall@1, MRR) and the
STS-B test split's Spearman x 100. Each seed trains both variants, so the differences
are paired by seed.
"""

import tempfile
from pathlib import Path

import numpy as np

from mtl_keras.config import RunConfig
from mtl_keras.encoding.encoder import SentenceEncoder
from mtl_keras.evaluation.metrics import retrieval_metrics
from mtl_keras.evaluation.sts import sts_pairs, sts_spearman
from mtl_keras.evaluation.widths import width_metrics
from mtl_keras.study.negatives import RUN, close_pairs, write_pairs
from mtl_keras.study.results import difference_cell, mean_cell
from mtl_keras.study.rows import paired_difference
from mtl_keras.tasks import from_files
from mtl_keras.training.run import train

GRID = "matryoshka"
VARIANTS = ("full width", "matryoshka")
WIDTHS = (384, 256, 128, 64)  # all-MiniLM-L6-v2's full width, then the cut ones
# (name in a row, column heading, digits): STS-B is x 100.
MEASURES = (("stsb", "STS-B", 2), ("recall_at_1", "recall@1", 4), ("mrr", "MRR", 4))


def measure(encode, test_pairs, sts):
    """{f"{measure}_{width}": value} of an encoder (list of str -> unit vectors)."""
    anchors, positives = (list(texts) for texts in zip(*test_pairs, strict=True))
    found = width_metrics(encode, WIDTHS, {
        "stsb": lambda cut: sts_spearman(cut, sts),
        "retrieval": lambda cut: retrieval_metrics(cut(anchors), cut(positives)),
    })  # fmt: skip
    row = {}
    for width, figures in found.items():
        row[f"stsb_{width}"] = figures["stsb"]
        row.update({f"{name}_{width}": v for name, v in figures["retrieval"].items()})
    return row


def compare(seeds=(0, 1, 2), folder=None):
    """Rows {grid, config, seed, <measure>_<width>} of both variants for every seed, and
    the untrained encoder's figures on the same data."""
    sts, test_pairs = sts_pairs("test"), close_pairs()["test"]
    untrained = measure(SentenceEncoder.pretrained(RUN["max_length"]).encode, test_pairs, sts)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(folder or scratch)
        task = from_files("qa", write_pairs(folder / "pairs"))
        for seed in seeds:
            for variant in VARIANTS:
                dims = ",".join(map(str, WIDTHS)) if variant == "matryoshka" else ""
                output = folder / "runs" / f"{variant.replace(' ', '-')}-{seed}"
                options = {**RUN, "save_model": True, "output_dir": str(output)}
                config = RunConfig(tasks=[task], seed=seed, matryoshka_dims=dims, **options)
                encoder = SentenceEncoder.from_path(train(config).model_path)
                rows.append({"grid": GRID, "config": variant, "seed": seed,
                             **measure(encoder.encode, test_pairs, sts)})  # fmt: skip
    return rows, untrained


def section(rows, untrained):
    """Markdown: per width, the untrained encoder, each variant's mean ± sample std over
    seeds, and the paired difference (bold where its 95 % interval excludes 0)."""
    heads = " | ".join(head for _, head, _ in MEASURES)
    lines = [f"| width | variant | seeds | {heads} |", "|---" * (3 + len(MEASURES)) + "|"]
    for width in WIDTHS:
        columns = [(f"{name}_{width}", digits) for name, _, digits in MEASURES]
        cells = [f"{untrained[c]:.{d}f}" for c, d in columns]
        lines.append(f"| {width} | untrained | – | {' | '.join(cells)} |")
        for variant in VARIANTS:
            runs = [r for r in rows if r["config"] == variant]
            cells = [spread_cell([r[c] for r in runs], d) for c, d in columns]
            lines.append(f"| {width} | {variant} | {len(runs)} | {' | '.join(cells)} |")
        diffs = [
            (paired_difference(rows, GRID, VARIANTS[1], VARIANTS[0], c), d) for c, d in columns
        ]
        seeds = diffs[0][0][2] if diffs[0][0] else 0
        cells = [difference_cell(value, d) for value, d in diffs]
        lines.append(f"| {width} | matryoshka − full width | {seeds} | {' | '.join(cells)} |")
    return "\n".join(lines)


def spread_cell(values, digits):
    """`mean ± sample std` of one measure over seeds."""
    values = np.array(values)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return mean_cell((values.mean(), std, len(values)), f".{digits}f")
