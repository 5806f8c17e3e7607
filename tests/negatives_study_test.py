"""The hard-negatives comparison: its task folders from the real pairs, and its table."""

import json

import numpy as np

from mtl_keras.study import negatives
from mtl_keras.tasks import from_files


class StubEncoder:
    """Unit vectors from a hash of each text: mining runs without loading weights."""

    def encode(self, texts):
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts]
        return np.array([r / np.linalg.norm(r) for r in rows])


def test_the_folders_hold_the_same_pairs_and_only_mined_training_has_negatives(tmp_path):
    paths = negatives.write_task_folders(tmp_path, StubEncoder())
    batch, mined = (from_files("qa", paths[v]) for v in negatives.VARIANTS)
    assert batch.negatives == 0 and mined.negatives == 1
    pairs = negatives.close_pairs()
    rows = [json.loads(line) for line in (paths["mined"] / "train.jsonl").read_text().splitlines()]
    assert 0.9 * len(pairs["train"]) < len(rows) <= len(pairs["train"])  # few left out
    assert all(r["negative"] != r["positive"] and r["negative"] != r["anchor"] for r in rows)
    for split in ("dev", "test"):
        assert (paths["mined"] / f"{split}.jsonl").read_text() == (
            paths["in-batch"] / f"{split}.jsonl").read_text()  # fmt: skip


def test_the_table_pairs_the_variants_by_seed():
    rows = [{"grid": "negatives", "config": config, "seed": seed, "recall_at_1": r, "mrr": m}
            for seed, (b, mm) in enumerate([(0.50, 0.52), (0.60, 0.63), (0.55, 0.57)])
            for config, r, m in (("in-batch", b, b + 0.1), ("mined", mm, mm + 0.1))]  # fmt: skip
    table = negatives.section(rows, {"recall_at_1": 0.4, "mrr": 0.5})
    assert "| untrained all-MiniLM-L6-v2 | – | 0.4000 | 0.5000 |" in table
    assert "| in-batch | 3 | 0.5500 ± 0.0500 |" in table
    assert "| mined − in-batch | 3 | **+0.0233 ± 0.0058** | **+0.0233 ± 0.0058** |" in table
