"""The Matryoshka comparison: its measures at each width, its table, and its command."""

import types
import zlib

import numpy as np
import pytest
import scipy.stats

from experiments.cli import study_main
from mtl_keras.study import matryoshka


def stub_encode(texts):
    """Unit vectors (384 values) from a hash of each text: no weights load."""
    rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=384) for t in texts]
    return np.array([r / np.linalg.norm(r) for r in rows], "float32")


def test_measure_gives_every_measure_at_every_width():
    pairs = [("a cat", "a cat sits"), ("rain today", "it rains"), ("stocks fall", "markets drop")]
    sts = ([f"s{i}" for i in range(20)], [f"t{i}" for i in range(20)], np.arange(20.0) / 4)
    row = matryoshka.measure(stub_encode, pairs, sts)
    assert set(row) == {f"{m}_{w}" for m, _, _ in matryoshka.MEASURES for w in matryoshka.WIDTHS}
    for width in (384, 64):  # against the cut vectors computed here
        cut = [stub_encode(texts)[:, :width] for texts in sts[:2]]
        cosine = np.sum(cut[0] * cut[1], 1) / np.prod([np.linalg.norm(c, axis=1) for c in cut], 0)
        want = 100 * scipy.stats.spearmanr(cosine, sts[2]).statistic
        assert row[f"stsb_{width}"] == pytest.approx(want, abs=1e-4)
    assert row["stsb_384"] != row["stsb_64"]
    assert 0 <= row["recall_at_1_64"] <= row["mrr_64"] <= 1


def test_the_table_pairs_the_variants_by_seed_at_each_width():
    rows = []
    for seed, shift in enumerate((0.02, 0.03, 0.04)):
        for variant, gain in (("full width", 0.0), ("matryoshka", shift)):
            row = {"grid": "matryoshka", "config": variant, "seed": seed}
            for width in matryoshka.WIDTHS:
                row.update(**{f"stsb_{width}": 80.0 + 100 * gain,
                                         f"recall_at_1_{width}": 0.5 + gain,
                                         f"mrr_{width}": 0.6 + gain})  # fmt: skip
            rows.append(row)
    untrained = {f"{m}_{w}": 0.25 for m, _, _ in matryoshka.MEASURES for w in matryoshka.WIDTHS}
    table = matryoshka.section(rows, untrained)
    assert "| 64 | untrained | – | 0.25 | 0.2500 | 0.2500 |" in table
    assert "| 64 | full width | 3 | 80.00 ± 0.00 | 0.5000 ± 0.0000 | 0.6000 ± 0.0000 |" in table
    assert ("| 128 | matryoshka − full width | 3 | **+3.00 ± 1.00** | **+0.0300 ± 0.0100** | "
            "**+0.0300 ± 0.0100** |") in table  # fmt: skip
    assert table.count("matryoshka − full width") == len(matryoshka.WIDTHS)


def test_study_command_writes_the_table_with_its_provenance(tmp_path, capsys):
    seen = []
    study = types.SimpleNamespace(
        compare=lambda seeds: (seen.append(seeds) or [{"seed": s} for s in seeds], {}),
        section=lambda rows, untrained: f"| {len(rows)} rows |",
    )
    out = tmp_path / "results" / "study.md"
    study_main(study, "A study.\n\nMore.", str(out), ["--seeds", "3, 4", "--out", str(out)])
    assert seen == [[3, 4]]
    text = out.read_text()
    assert text.startswith("Made at commit ") and "seeds [3, 4]." in text
    assert "| 2 rows |" in text and "| 2 rows |" in capsys.readouterr().out
