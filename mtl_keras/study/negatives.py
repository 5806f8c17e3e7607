"""Hard negatives against in-batch negatives only, on retrieval pairs held out from tuning.

The pairs are STS-B's scored 4 or more, in its official splits: the model trains on the
train split's, and is measured by retrieval on the test split's (each anchor against
every test positive: recall@1, MRR), which nothing here tunes on. The mining settings
are fixed before any run (`MINING`). Each seed trains both variants, so the
differences are paired by seed.
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from mtl_keras.config import RunConfig
from mtl_keras.data import sources
from mtl_keras.data.mining import mine_file
from mtl_keras.encoding.encoder import SentenceEncoder
from mtl_keras.evaluation.metrics import retrieval_metrics
from mtl_keras.study.results import difference_cell, mean_cell
from mtl_keras.study.rows import paired_difference
from mtl_keras.tasks import from_files
from mtl_keras.training.run import train

GRID = "negatives"
VARIANTS = ("in-batch", "mined")
METRICS = ("recall_at_1", "mrr")
# sentence-transformers' usual advice, fixed a priori: the closest candidate that is
# clearly less similar than the positive (no tuning on these pairs).
MINING = {"num_negatives": 1, "range_min": 0, "margin": 0.1, "sampling": "top"}
RUN = {"epochs": 1, "max_length": 64, "batch_size": 32, "measure_sts": False,
       "save_model": False, "verbose": 0}  # fmt: skip


def close_pairs():
    """{split: [(anchor, positive)]} of STS-B's pairs scored 4 or more."""
    splits, _ = sources.read_stsb()
    return {split: [(p["sentence1"], p["sentence2"]) for p in pairs if p["score"] >= 4]
            for split, pairs in splits.items()}  # fmt: skip


def write_pairs(folder, splits=("train", "validation", "test")):
    """`folder/{train,dev,test}.jsonl`: `close_pairs` as a user's contrastive task folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, pairs in close_pairs().items():
        if split in splits:
            lines = [json.dumps({"anchor": a, "positive": p}) for a, p in pairs]
            name = {"validation": "dev"}.get(split, split)
            (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_task_folders(folder, encoder):
    """`folder/in-batch` and `folder/mined` (train, dev, test .jsonl): the same pairs, the
    mined folder's training file with a hard negative per anchor."""
    folder = Path(folder)
    write_pairs(folder / "in-batch")
    write_pairs(folder / "mined", ("validation", "test"))
    mine_file(folder / "in-batch" / "train.jsonl", folder / "mined" / "train.jsonl",
              encoder.encode, **MINING)  # fmt: skip
    return {variant: folder / variant for variant in VARIANTS}


def compare(seeds=(0, 1, 2), folder=None):
    """Rows {grid, config, seed, recall_at_1, mrr} of both variants for every seed, and
    the untrained encoder's retrieval on the same test pairs."""
    encoder = SentenceEncoder.pretrained(RUN["max_length"])
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(folder or scratch)
        tasks = {
            v: from_files("qa", path) for v, path in write_task_folders(folder, encoder).items()
        }
        rows = []
        for seed in seeds:
            for variant, task in tasks.items():
                output = str(folder / "runs" / f"{variant}-{seed}")
                config = RunConfig(tasks=[task], seed=seed, output_dir=output, **RUN)
                test = train(config).metrics["test"]["qa"]
                rows.append({"grid": GRID, "config": variant, "seed": seed,
                             **{m: test[m] for m in METRICS}})  # fmt: skip
    anchors, positives = zip(*close_pairs()["test"], strict=True)
    untrained = retrieval_metrics(encoder.encode(list(anchors)), encoder.encode(list(positives)))
    return rows, untrained


def section(rows, untrained):
    """Markdown: each variant's mean ± sample std, the paired difference (bold where its
    95 % interval excludes 0), and the untrained encoder's figures."""
    lines = ["| variant | seeds | recall@1 | MRR |", "|---|---|---|---|",
             f"| untrained all-MiniLM-L6-v2 | – | {untrained['recall_at_1']:.4f} | "
             f"{untrained['mrr']:.4f} |"]  # fmt: skip
    for variant in VARIANTS:
        values = [np.array([r[m] for r in rows if r["config"] == variant]) for m in METRICS]
        cells = [mean_cell((v.mean(), v.std(ddof=1), len(v)), ".4f") for v in values]
        lines.append(f"| {variant} | {len(values[0])} | {' | '.join(cells)} |")
    diffs = [paired_difference(rows, GRID, "mined", "in-batch", m) for m in METRICS]
    lines.append(f"| mined − in-batch | {diffs[0][2] if diffs[0] else 0} | "
                 f"{' | '.join(difference_cell(d) for d in diffs)} |")  # fmt: skip
    return "\n".join(lines)
