"""Hugging Face `datasets` objects as a task's splits: read through Arrow, they give the
examples a `tf.data` dataset of the same rows gives."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_keras.errors import InputError
from mtl_keras.tasks import from_datasets

datasets = pytest.importorskip("datasets")

ROWS = {
    "sentence": ({"text": ["the team won", "stocks fell", "a new chip"], "label": [0, 1, 0]},
                 {"label": datasets.ClassLabel(names=["sport", "money"])}),
    "token": ({"tokens": [["Ada", "saw", "Paris"], ["hi"]], "ner": [[1, 0, 2], [0]]},
              {"ner": datasets.List(datasets.ClassLabel(names=["O", "B-per", "B-loc"]))}),
    "multi_label": ({"text": ["a", "b", "c"], "labels": [[0, 2], [], [1]]},
                    {"labels": datasets.List(datasets.ClassLabel(names=["x", "y", "z"]))}),
    "pair": ({"sentence1": ["a", "b"], "sentence2": ["c", "d"], "score": [0.5, 4.0]}, {}),
}  # fmt: skip


def hf_dataset(kind):
    rows, labels = ROWS[kind]
    features = {name: datasets.Value("string") for name in rows if name not in labels}
    if kind == "token":
        features["tokens"] = datasets.List(datasets.Value("string"))
    if kind == "pair":
        features["score"] = datasets.Value("float32")
    return datasets.Dataset.from_dict(rows, features=datasets.Features({**features, **labels}))


def as_lists(task, split="train"):
    return [tf.nest.map_structure(lambda v: np.asarray(v).tolist(), example)
            for example in task.examples(split).as_numpy_iterator()]  # fmt: skip


@pytest.mark.parametrize("kind", ROWS)
def test_a_dataset_gives_the_rows_a_tf_dataset_of_them_gives(kind):
    data = hf_dataset(kind)
    task = from_datasets("hub", kind, {"train": data, "test": data.select([1, 0])},
                         score_range=(0.0, 5.0))  # fmt: skip
    names = {"sentence": ("sport", "money"), "token": ("O", "B-per", "B-loc"),
             "multi_label": ("x", "y", "z"), "pair": ()}[kind]  # fmt: skip
    assert task.labels == names  # from the ClassLabel feature
    rows = ROWS[kind][0]
    if kind == "multi_label":  # multi-hot in tf.data
        rows = {**rows, "labels": [[float(i in ids) for i in range(3)] for ids in rows["labels"]]}
    expected = [
        {f: rows[f][i] for f in task.spec.fields} for i in range(len(rows[task.spec.fields[0]]))
    ]
    for example in expected:
        for field, value in example.items():
            if isinstance(value, str) or (
                isinstance(value, list) and value and isinstance(value[0], str)
            ):
                example[field] = tf.nest.map_structure(str.encode, value)
    got = as_lists(task)
    if kind == "pair":
        expected = [{**e, "score": pytest.approx(e["score"])} for e in expected]
    assert got == expected
    assert as_lists(task, "test") == got[1::-1]  # a selection keeps its order
    streamed = from_datasets("hub", kind, {"train": data.to_iterable_dataset()},
                             labels=names, score_range=(0.0, 5.0))  # fmt: skip
    assert as_lists(streamed) == got


def test_a_dataset_without_the_kinds_column_is_one_clear_error():
    data = datasets.Dataset.from_dict({"body": ["a", "b"], "label": [0, 1]})
    with pytest.raises(InputError, match="the train dataset has no 'text' column"):
        from_datasets("hub", "sentence", {"train": data}, labels=("a", "b"))
    data = datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
    with pytest.raises(InputError, match="column 'label' is not one int64 per example"):
        from_datasets("hub", "sentence", {"train": data}, labels=("a", "b"))
    unlabelled = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, -1]})
    with pytest.raises(
        InputError, match="test dataset column 'label' holds label ids -1 to 0, outside \\[0, 2\\)"
    ):
        from_datasets("hub", "sentence", {"train": data.select([]), "test": unlabelled},
                      labels=("a", "b"))  # fmt: skip
