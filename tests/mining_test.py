"""Mining hard negatives: what is never a negative, the rank window, margin, max score,
sampling, and the command that writes a triplets file a contrastive task trains on."""

import json

import numpy as np
import pytest

from experiments import data
from experiments.cli import run_main
from mtl_keras.data import sources
from mtl_keras.data.mining import mine_hard_negatives
from mtl_keras.errors import InputError
from mtl_keras.tasks import from_files

# Texts as points on a circle (degrees): the cosine of two texts is that of their angle.
ANGLES = {"a": 0, "a+": 5, "a++": 10, "b": 40, "b+": 45, "c": 100, "d": 200, "d+": 205}
PAIRS = [("a", "a+"), ("a", "a++"), ("b", "b+"), ("c", "a"), ("d", "d+")]


def encode(texts):
    radians = np.radians([ANGLES[t] for t in texts])
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def mined(**options):
    anchors, positives = zip(*PAIRS, strict=True)
    rows, dropped = mine_hard_negatives(list(anchors), list(positives), encode, **options)
    return {(a, p): negatives for a, p, negatives in rows}, dropped


def test_never_the_anchors_positives_nor_the_anchor_itself():
    """'a' is closest to its two positives and to itself (another pair's positive): none
    of them is its negative; 'c''s positive 'a' is not its negative either."""
    rows, dropped = mined()
    assert dropped == 0
    assert rows[("a", "a+")] == rows[("a", "a++")] == ["b+"]
    assert rows[("c", "a")] == ["b+"] and rows[("b", "b+")] == ["a++"]
    for (anchor, positive), negatives in rows.items():
        assert positive not in negatives and anchor not in negatives


def test_the_rank_window_margin_and_max_score():
    assert mined(range_min=1)[0][("a", "a+")] == ["d+"]  # the closest candidate skipped
    assert mined(range_max=1, num_negatives=2)[1] == len(PAIRS)  # one candidate each
    # 'b''s positive scores cos 5 = 0.996; 'a++' (cos 30 = 0.866) is within 0.2 of it.
    assert mined(margin=0.1)[0][("b", "b+")] == ["a++"]
    assert mined(margin=0.2)[0][("b", "b+")] == ["a"]
    assert mined(max_score=0.8)[0][("b", "b+")] == ["a"]


def test_several_negatives_closest_first_and_too_few_candidates_leave_an_anchor_out():
    rows, _ = mined(num_negatives=2)
    assert rows[("d", "d+")] == ["b+", "a"]
    assert mined(num_negatives=9) == ({}, len(PAIRS))


def test_random_sampling_draws_from_the_window_and_is_fixed_by_the_seed():
    draws = [mined(num_negatives=2, sampling="random", seed=seed)[0] for seed in range(8)]
    assert draws[0] == mined(num_negatives=2, sampling="random", seed=0)[0]
    chosen = {tuple(d[("d", "d+")]) for d in draws}
    assert len(chosen) > 1 and all(set(c) <= {"b+", "a", "a+", "a++"} for c in chosen)


@pytest.mark.parametrize("options, message", [
    ({"num_negatives": 0}, "--num-negatives must be a whole number >= 1"),
    ({"range_min": 3, "range_max": 2}, "give 0 <= range-min < range-max"),
    ({"margin": 0.1, "max_score": 0.5}, "--margin and --max-score: choose one"),
    ({"sampling": "hardest"}, "unknown sampling 'hardest'"),
])  # fmt: skip
def test_bad_options_are_one_clear_error(options, message):
    with pytest.raises(InputError, match=message):
        mined(**options)


def test_the_command_writes_triplets_a_contrastive_task_trains_on(tiny_preset, tmp_path, capsys):
    pairs, _ = sources.read_stsb()
    close = [p for p in pairs["train"] if p["score"] >= 4][:60]
    source = tmp_path / "pairs.jsonl"
    source.write_text("\n".join(json.dumps({"anchor": p["sentence1"], "positive": p["sentence2"]})
                                for p in close))  # fmt: skip
    out = tmp_path / "triplets.jsonl"
    argv = ["mine-negatives", "--input", str(source), "--output", str(out), "--model",
            str(tiny_preset), "--max-length", "16", "--num-negatives", "2", "--range-min", "1"]  # fmt: skip
    data.main(argv)
    assert "wrote 60 rows with 2 hard negatives each" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 60 and all(r["positive"] not in (r["negative_1"], r["negative_2"])
                                   for r in rows)  # fmt: skip
    assert from_files("qa", out).negatives == 2
    for extra, reason in ((["--num-negatives", "1"], "--overwrite"), ([], "--overwrite")):
        with pytest.raises(SystemExit) as stop:
            run_main(data.main, [*argv, *extra])
        assert stop.value.code == 2 and reason in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhi,a\n")
    with pytest.raises(SystemExit):
        run_main(data.main, ["mine-negatives", "--input", str(bad), "--output",
                             str(tmp_path / "x.jsonl"), "--model", str(tiny_preset),
                             "--max-length", "16"])  # fmt: skip
    assert "has no 'anchor' column" in capsys.readouterr().err
