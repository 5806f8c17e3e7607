from mtl_keras.data.splits import SPLITS, deduplicate, split_examples, split_of


def test_split_of_is_stable_and_roughly_80_10_10():
    texts = [f"sentence number {i}" for i in range(5000)]
    first = [split_of(t) for t in texts]
    assert first == [split_of(t) for t in texts]
    share = {s: first.count(s) / len(first) for s in SPLITS}
    assert 0.77 < share["train"] < 0.83 and 0.08 < share["validation"] < 0.12
    # Pinned values: a change of hash would silently move examples between splits.
    assert [split_of(t) for t in ("a", "b", "c", "hello world")] == [
        "test",
        "train",
        "validation",
        "test",
    ]


def test_split_is_disjoint_and_deduplicated():
    examples = [{"text": t} for t in ["a", "b", "a", "c", "d", "b"] * 3]
    splits, removed = split_examples(examples, key=lambda e: e["text"])
    seen = [e["text"] for name in SPLITS for e in splits[name]]
    assert sorted(seen) == ["a", "b", "c", "d"]
    assert removed["duplicate text"] == 14


def test_deduplicate_keeps_first():
    kept, removed = deduplicate([{"t": "x", "i": 0}, {"t": "x", "i": 1}], key=lambda e: e["t"])
    assert kept == [{"t": "x", "i": 0}] and removed["duplicate text"] == 1
