"""Labelling new text with a trained model: the Python API and `experiments.predict`."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mtl_keras.encoding.preprocessing import make_preprocessor, trim_padding
from mtl_keras.predict import Predictor
from mtl_keras.tasks import TASKS

TEXTS = ["the quick fox jumps over the lazy dog", "", "sao paulo won !", "a", "stocks fell ."]


@pytest.fixture(scope="module")
def predictor(tiny_run):
    return Predictor.from_path(tiny_run / "model.keras", max_length=16, batch_size=2)


def test_every_task_labelled_in_input_order(predictor):
    results = predictor.predict(TEXTS, embeddings=True)
    assert [r["text"] for r in results] == TEXTS
    for result in results:
        for task in ("topic", "sentiment"):
            probs = result[task]["probabilities"]
            assert list(probs) == list(TASKS[task].labels)
            assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
            assert result[task]["label"] == max(probs, key=probs.get)
        ner = result["ner"]
        assert ner["words"] == result["text"].split() and len(ner["tags"]) == len(ner["words"])
        for entity in ner["entities"]:
            assert result["text"][entity["start"] : entity["end"]] == entity["text"]
        assert len(result["embedding"]) == 16
    # Sorting by length and batching change nothing: each text alone gives the same.
    alone = predictor.predict([TEXTS[2]])[0]
    assert alone["topic"]["probabilities"] == pytest.approx(results[2]["topic"]["probabilities"])


def test_entities_come_back_with_their_character_offsets(tiny_run):
    # A model whose NER head tags every word piece B-person: every word is then a
    # one-word person entity, so the spans and offsets are known exactly.
    predictor = Predictor.from_path(tiny_run / "model.keras", max_length=16)
    head = predictor.model.head_denses["ner"]
    bias = np.full(head.bias.shape, -100.0, "float32")
    bias[TASKS["ner"].labels.index("B-person")] = 100.0
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    head.bias.assign(bias)
    text = " \tsao  paulo won !"
    result = predictor.predict([text, "stocks fell ."])
    entities = result[0]["ner"]["entities"]
    assert [(e["text"], e["type"], e["start"], e["end"]) for e in entities] == [
        ("sao", "person", 2, 5), ("paulo", "person", 7, 12),
        ("won", "person", 13, 16), ("!", "person", 17, 18),
    ]  # fmt: skip
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert result[0]["ner"]["tags"] == ["B-person"] * 4
    assert [e["text"] for e in result[1]["ner"]["entities"]] == ["stocks", "fell", "."]


def test_default_length_is_the_trained_length(tiny_run):
    # tiny_run trained at --max-length 16 (the tiny encoder has 32 positions; the old
    # default of 128 was refused): the model carries its length.
    predictor = Predictor.from_path(tiny_run / "model.keras")
    assert predictor.model.max_length == predictor.max_length == 16
    long = " ".join(["the quick fox"] * 20)
    tags = predictor.predict([long])[0]["ner"]["tags"]  # 60 words, 14 fit beside [CLS] [SEP]
    assert None not in tags[:14] and tags[14:] == [None] * 46
    assert Predictor.from_path(tiny_run / "model.keras", max_length=32).max_length == 32


def test_non_strings_are_refused_naming_the_item(predictor):
    from mtl_keras.errors import InputTypeError

    for bad in (None, 3, b"bytes", ["nested"]):
        with pytest.raises(InputTypeError, match=r"sentences\[1\] is .*expected str"):
            predictor.predict(["the fox", bad])
    with pytest.raises(InputTypeError, match="must be a str or a list of str"):
        predictor.predict(42)


def test_word_by_word_inputs_match_the_training_preprocessor(predictor, tiny_run):
    # With an NER head the predictor tokenizes word by word; sentence heads trained on the
    # preprocessor's whole-text pieces. On ordinary text both must give the same logits.
    texts = [t for t in TEXTS if t]
    x = trim_padding(make_preprocessor(predictor.tokenizer, 16)(tf.constant(texts)))
    logits = predictor.model.inference_model()(x, training=False)["topic"]
    want = tf.nn.softmax(logits).numpy()
    got = [list(r["topic"]["probabilities"].values()) for r in predictor.predict(texts)]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_token_decode_gives_spans_with_offsets_and_untagged_words():
    task = TASKS["ner"]
    text = "I met Ada Lovelace in London \x07 today"
    words = [(w, text.index(w), text.index(w) + len(w)) for w in text.split()]
    tag = task.labels.index
    # "\x07" is empty after cleaning (no pieces); "today" was cut by max_length.
    pieces = [1, 1, 1, 2, 1, 1, 0, 1]
    tagged = [tag("O"), tag("O"), tag("B-person"), tag("I-person"), tag("O"), tag("B-geo-loc")]
    # Positions: [CLS], the six first pieces, a second piece of "Lovelace", [SEP].
    first_piece = np.array([0, 1, 1, 1, 1, 1, 1, 0, 0])
    rows = [tag("O"), *tagged, tag("I-person"), tag("O")]
    logits = np.eye(task.num_classes)[rows] * 5.0
    logits[[0, 7, 8]] = np.eye(task.num_classes)[tag("B-person")] * 9.0  # not first pieces
    out = task.spec.decode(task, logits, text, words, pieces, first_piece)
    assert out["tags"][6:] == [None, None] and out["tags"][2] == "B-person"
    assert out["entities"] == [
        {"text": "Ada Lovelace", "type": "person", "start": 6, "end": 18},
        {"text": "London", "type": "geo-loc", "start": 22, "end": 28},
    ]


def test_cli_labels_a_text_file_from_outside_the_checkout(tiny_run, tmp_path):
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    argv = [
        "--model",
        str(tiny_run / "model.keras"),
        "--input",
        "texts.txt",
        "--output",
        "labels.jsonl",
        "--max-length",
        "16",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "experiments.predict", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    assert {"topic", "sentiment", "ner"} <= set(rows[0])


@pytest.mark.parametrize(
    "name, content, column",
    [
        ("in.csv", 'id,text\n1,the fox\n2,"stocks fell ,"\n', None),
        ("in.jsonl", '{"text": "the fox"}\n\n{"text": "stocks fell ,"}\n', None),
        ("in.csv", 'text,body\nno,the fox\nno,"stocks fell ,"\n', "body"),
        ("in.jsonl", '{"text": "no", "body": "the fox"}\n{"body": "stocks fell ,"}\n', "body"),
    ],
    ids=["csv", "jsonl", "csv --column", "jsonl --column"],
)
def test_cli_reads_csv_and_jsonl(tiny_run, tmp_path, capsys, name, content, column):
    from experiments import predict

    (tmp_path / name).write_text(content)
    argv = [
        "--model",
        str(tiny_run / "model.keras"),
        "--input",
        str(tmp_path / name),
        "--max-length",
        "16",
        *(["--column", column] if column else []),
    ]
    predict.main(argv)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["the fox", "stocks fell ,"]
