"""The columnar reader (pyarrow) against the row reader it stands in for: on any file,
either both give the same columns, or pyarrow hands the file to the row reader."""

import collections
import csv
import json
import random
import sys

import numpy as np
import pyarrow as pa
import pytest

from mtl_keras.data import columns, files
from mtl_keras.data.splits import split_of
from mtl_keras.errors import InputError
from tests.fuzz_test import random_data_file

TRICKY = {
    "quotes.csv": 'text,label\n"a ""quoted"" word",x\nab"c,y\n"two\nlines",x\n',
    "bom.csv": "\ufefftext,label\nhi,x\nho,y\n",
    "crlf.csv": "text,label\r\nhi,x\r\n\r\nho,y\r\n",
    "spaces.csv": "text,label\n  padded  , lab \nho,\u00a0y\u2003\n",
    "only odd space.csv": "text,label\nhi,x\n\x1f\u3000,y\n",
    "numbers.csv": "text,label\n007,1\n1e5,2\n",
    "ragged.csv": "text,label\nhi,x\nho\n",
    "quote.tsv": 'text\tlabel\n"hi\tx\nho"\ty\n',
    "scores.tsv": "sentence1\tsentence2\tscore\na\tb\t 3.5\nc\td\t1_0\ne\tf\t4\n",
    "score words.tsv": "sentence1\tsentence2\tscore\na\tb\thigh\n",
    "labels.csv": "text,labels\nhi,a|b\nho,| a ||\nhe,\n",
    "tokens.csv": "tokens,tags\nAda  saw\tme,B-per O O\nhi,O\n",
    "tokens.jsonl": '{"tokens": ["Ada", " "], "tags": ["B", "O"]}\n',
    "ints.jsonl": '{"text": "hi", "label": 3}\n{"text": "ho", "label": -1}\n',
    "bools.jsonl": '{"text": "hi", "label": true}\n',
    "mixed.jsonl": '{"text": "hi", "label": "a"}\n{"text": "ho", "label": 2}\n',
    "two on a line.jsonl": '{"text": "hi", "label": "a"} {"text": "ho", "label": "b"}\n',
    "spread.jsonl": '{"text": "hi",\n "label": "a"}\n',
    "separator.jsonl": '{"text": "hi\u2028there", "label": "a"}\n{"text": "ho", "label": "b"}\n',
    "missing key.jsonl": '{"text": "hi", "label": "a"}\n{"text": "ho"}\n',
    "late negative.jsonl": '{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d", '
    '"negative": "e"}\n',
    "lists.jsonl": '{"text": "hi", "labels": ["a", 2]}\n{"text": "ho", "labels": []}\n',
    "empty lists.jsonl": '{"text": "hi", "labels": []}\n{"text": "ho", "labels": []}\n',
    "float scores.jsonl": '{"sentence1": "a", "sentence2": "b", "score": 1}\n'
    '{"sentence1": "c", "sentence2": "d", "score": 2.5}\n',
    "bool score.jsonl": '{"sentence1": "a", "sentence2": "b", "score": true}\n',
    "triplets.csv": "anchor,positive,negative\na,b,c\nd,e,f\n",
    "numbered.jsonl": '{"anchor": "a", "positive": "b", "negative_2": "d", "negative_1": "c"}\n',
    "gap.jsonl": '{"anchor": "a", "positive": "b", "negative_2": "c"}\n',
    "both.csv": "anchor,positive,negative,negative_1\na,b,c,d\n",
}


def test_the_whitespace_the_checks_know_is_pythons():
    ours = {c for low, high in columns.SPACE_RANGES for c in range(low, high + 1)}
    assert ours == {c for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def outcome(read, path):
    """('columns', kind, {column: values}) or ('error', message) or ('fallback',)."""
    try:
        table = read(path, None, {})
    except InputError as error:
        return ("error", str(error))
    except (columns.Fallback, pa.ArrowException):
        return ("fallback",)
    return ("columns", table.kind, {n: c.to_pylist() for n, c in table.data.items()})


def assert_same(path):
    fast, rows = outcome(files.arrow_columns, path), outcome(files.row_columns, path)
    assert fast[0] != "error", (path, fast)  # pyarrow's path never raises on its own
    if fast[0] == "columns":
        assert fast == rows, path
    return fast[0]


@pytest.mark.parametrize("name", TRICKY)
def test_tricky_files_read_the_same_or_go_to_the_row_reader(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(TRICKY[name].encode("utf-8"))
    assert_same(path)


def test_random_files_read_the_same_or_go_to_the_row_reader(tmp_path):
    """The fuzz test's files (random columns, cells, bytes): most good ones take the fast
    path, and every file it reads gives the row reader's columns."""
    rng, taken = random.Random(11), []
    for case in range(300):
        path = random_data_file(tmp_path, rng, case)
        if path.suffix in (".csv", ".tsv", ".jsonl"):
            taken.append((assert_same(path), outcome(files.row_columns, path)[0]))
    assert ("columns", "columns") in taken and ("fallback", "error") in taken, taken


WORDS = ["the", "café", "a,b", '"q"', "x|y", "  padded ", "\u00a0nbsp", "007",
         "1e5", "-2.5", "line\nbreak", "Привет", "😀", "|"]  # fmt: skip
LAYOUTS = {"sentence": ["text", "label"], "multi_label": ["text", "labels"],
           "pair": ["sentence1", "sentence2", "score"], "token": ["tokens", "tags"],
           "pair_classification": ["sentence1", "sentence2", "label"],
           "contrastive": ["anchor", "positive"]}  # fmt: skip


def random_cell(rng, column, json_file):
    words = rng.choices(WORDS, k=rng.randrange(1, 4))
    if column == "score":
        return rng.choice([rng.uniform(0, 5), rng.randrange(6)]) if json_file else (
            rng.choice(["1", "2.5", " 3", "4e0", "5", "0", "3.25"] * 5 + ["nan", "x"]))  # fmt: skip
    if column in ("tokens", "tags", "labels") and json_file:
        return [w.strip() or "w" for w in words] if rng.random() < 0.95 else []
    if column == "tags":
        return "B O I"[: 2 * len(words) - 1]
    if column == "tokens":
        return " ".join(w.strip() or "w" for w in words)
    return "".join(words) if rng.random() < 0.995 else " "


def random_good_file(folder, rng, case):
    """Mostly valid files of every kind with tricky cells (quotes, delimiters, Unicode
    spaces, numbers, empty list parts), some with one bad cell."""
    kind = rng.choice(list(LAYOUTS))
    suffix = rng.choice([".csv", ".tsv", ".jsonl"])
    rows = [[random_cell(rng, c, suffix == ".jsonl") for c in LAYOUTS[kind]]
            for _ in range(rng.randrange(1, 30))]  # fmt: skip
    path = folder / f"good{case}{suffix}"
    if suffix == ".jsonl":
        lines = [json.dumps(dict(zip(LAYOUTS[kind], row, strict=True))) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    if suffix == ".tsv":  # no quoting: a line break ends the row
        rows = [[c.replace("\n", " ") if isinstance(c, str) else c for c in r] for r in rows]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, delimiter="\t" if suffix == ".tsv" else ",",
                         quoting=csv.QUOTE_NONE if suffix == ".tsv" else csv.QUOTE_MINIMAL,
                         escapechar="\\")  # fmt: skip
        out.writerows([LAYOUTS[kind], *rows])
    return path


def test_random_good_files_read_the_same_and_mostly_fast(tmp_path):
    rng, taken = random.Random(12), []
    for case in range(300):
        path = random_good_file(tmp_path, rng, case)
        taken.append((assert_same(path), outcome(files.row_columns, path)[0]))
    counts = collections.Counter(taken)
    assert counts[("columns", "columns")] >= 100 and counts[("fallback", "error")] >= 20, counts


def test_good_files_take_the_fast_path(tmp_path):
    for name in ("quotes.csv", "bom.csv", "crlf.csv", "ints.jsonl", "empty lists.jsonl",
                 "triplets.csv", "numbered.jsonl"):  # fmt: skip
        path = tmp_path / name
        path.write_bytes(TRICKY[name].encode("utf-8"))
        assert outcome(files.arrow_columns, path)[0] == "columns", name


def test_a_bad_row_far_down_a_big_file_is_named_by_its_line(tmp_path):
    """Checked column by column, reported by the row reader with the line."""
    path = tmp_path / "big.jsonl"
    rows = [{"text": f"text {i}", "label": "ab"[i % 2]} for i in range(50_000)]
    rows[41_234]["text"] = "   "
    path.write_text("\n".join(map(json.dumps, rows)) + "\n")
    with pytest.raises(InputError, match="big.jsonl' line 41235: 'text' is empty"):
        files.read_columns(path)


def test_splits_keep_every_row_once_and_carve_by_the_hash(tmp_path):
    path = tmp_path / "mine.csv"
    texts = [f"sentence number {i}" for i in range(3000)]
    path.write_text("text,label\n" + "".join(f"{t},{'ab'[i % 2]}\n" for i, t in enumerate(texts)))
    _, splits, _ = files.file_splits({"train": str(path)})
    seen = {split: splits[split].pylist("text") for split in splits}
    assert sorted(sum(seen.values(), [])) == sorted(texts)
    for split, chosen in seen.items():
        assert all(split_of(t) == split for t in chosen)
        assert chosen == sorted(chosen, key=texts.index)  # the file's order is kept
    assert 0.07 < len(seen["test"]) / len(texts) < 0.13
    label = {t: i % 2 for i, t in enumerate(texts)}
    ids = files.example_tensors(files.KINDS["sentence"], splits["train"], ("a", "b"))["label"]
    assert np.array_equal(ids.numpy(), [label[t] for t in seen["train"]])


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))


def test_shards_read_as_the_one_file_they_were_cut_from(tmp_path):
    """A folder of train-*.csv shards, or a glob, gives the examples of the whole file."""
    from mtl_keras.tasks import from_files

    rows = [(f"sentence {i} of the file", "abc"[i % 3]) for i in range(900)]
    write_rows(tmp_path / "whole.csv", rows)
    for i in range(3):
        write_rows(tmp_path / "shards" / f"train-{i:05d}.csv", rows[i * 300 : (i + 1) * 300])
    whole = from_files("whole", tmp_path / "whole.csv")
    for path in (tmp_path / "shards", tmp_path / "shards" / "train-0000*.csv"):
        task = from_files("sharded", path)
        assert task.labels == whole.labels and "*" in task.files["train"]
        for split in ("train", "validation", "test"):
            ours, theirs = (list(t.examples(split).as_numpy_iterator()) for t in (task, whole))
            assert ours == theirs and len(ours) > 0


def test_a_bad_row_or_label_in_a_shard_names_that_shard_and_its_line(tmp_path):
    from mtl_keras.tasks import from_files

    write_rows(tmp_path / "train-00000.csv", [("hi", "a"), ("ho", "b")])
    write_rows(tmp_path / "train-00001.csv", [("he", "a"), ("   ", "b")])
    with pytest.raises(InputError, match="train-00001.csv' line 3: 'text' is empty"):
        from_files("mine", tmp_path)
    write_rows(tmp_path / "train-00001.csv", [("he", "a")])
    write_rows(tmp_path / "dev-00000.csv", [("x", "a")])
    write_rows(tmp_path / "dev-00001.csv", [("y", "a"), ("z", "c")])
    with pytest.raises(InputError, match="dev-00001.csv' line 3: label 'c' never occurs"):
        from_files("mine", tmp_path)
    with pytest.raises(InputError, match="matches no file"):
        from_files("mine", tmp_path / "nothing-*.csv")


def test_text_tensors_are_cut_right_from_slices_and_pieces():
    """Strings cut from a column's bytes: a slice starts inside its parent's buffer, and a
    long column is converted a piece at a time."""
    texts = [f"text {i} é" * (i % 4 + 1) for i in range(50)]
    column = pa.chunked_array([pa.array(texts[:20]), pa.array(texts[20:])])
    assert files.text_tensor(column, rows=7).numpy().tolist() == [t.encode() for t in texts]
    part = pa.array(texts).slice(13, 9)
    assert files.text_tensor(part).numpy().tolist() == [t.encode() for t in texts[13:22]]
    assert files.text_tensor(pa.array([], pa.string())).shape == (0,)
