"""The bad-input corpus across the public surfaces: defined behaviour or a one-line error.

Every case is its own test, so one failure cannot hide the rest; the summary at the end
of a pytest run counts them (see `pytest_runtest_logreport` in conftest.py).
"""

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from experiments import embed, export, predict, run
from experiments.cli import run_main
from mtl_keras import SentenceEncoder
from mtl_keras.data import get_builder, load
from mtl_keras.errors import UserError

VALID_TEXT = {
    "empty": "",
    "whitespace": " \t\n ",
    "emoji": "😀🎉 great flight ✈️",
    "right-to-left": "مرحبا بالعالم",
    "mixed scripts": "Hello שלום 世界 Привет",
    "control characters": "a\x00b\x07c\u200bd\x1b[31m",
    "10,000 characters": "word " * 2000,
}
# Texts whose pieces equal another's: what cleaning, truncation and whitespace promise.
SAME_PIECES = {
    "whitespace": "",
    "control characters": "abcd[31m",  # control and zero-width characters are dropped
    "10,000 characters": "word " * 14,  # cut to 14 pieces + [CLS] and [SEP] (max_length 16)
}
INVALID_ITEMS = {
    "bytes": b"bytes",
    "None": None,
    "int": 3,
    "float": 3.5,
    "nested list": ["nested"],
    "dict": {"a": 1},
}


def one_line_exit_2(capsys, main, argv):
    with pytest.raises(SystemExit) as info:
        run_main(main, argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def encoder(tiny_preset):
    return SentenceEncoder.from_preset(tiny_preset, max_length=16)


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tf.saved_model.load(str(tiny_export)).signatures["serving_default"]


@pytest.mark.parametrize("case", VALID_TEXT)
def test_encode_valid_text(encoder, case):
    out = encoder.encode([VALID_TEXT[case], "the fox"])
    assert out.shape == (2, 16) and np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    alone = encoder.encode([VALID_TEXT[case]])  # batching and padding change nothing
    np.testing.assert_allclose(out[0], alone[0], atol=1e-5)
    if case in SAME_PIECES:
        np.testing.assert_allclose(out[0], encoder.encode([SAME_PIECES[case]])[0], atol=1e-5)
    elif VALID_TEXT[case]:  # not collapsed onto the empty text
        assert np.abs(out[0] - encoder.encode([""])[0]).max() > 1e-3


@pytest.mark.parametrize("case", INVALID_ITEMS)
def test_encode_invalid_item(encoder, case):
    with pytest.raises(TypeError, match=r"sentences\[1\]"):
        encoder.encode(["ok", INVALID_ITEMS[case]])


@pytest.mark.parametrize("value", [None, 42], ids=["top-level None", "top-level int"])
def test_encode_not_a_list(encoder, value):
    with pytest.raises(TypeError, match="list of str"):
        encoder.encode(value)


def test_embed_cli_every_valid_text(tiny_preset):
    out = embed.main(["--preset", str(tiny_preset), "--max-length", "16", *VALID_TEXT.values()])
    assert out.shape == (len(VALID_TEXT), 16) and np.isfinite(out).all()


@pytest.mark.parametrize(
    "argv, reason",
    [(["--max-length", "0", "x"], "max_length must be an int >= 2.*got 0"),
     (["--preset", "/nonexistent", "x"], "'/nonexistent' is not a local keras-hub preset")],
    ids=["--max-length 0", "missing preset"],
)  # fmt: skip
def test_embed_cli_error(tiny_preset, capsys, argv, reason):
    argv = argv if "--preset" in argv else ["--preset", str(tiny_preset), *argv]
    assert re.search(reason, one_line_exit_2(capsys, embed.main, argv)), reason


RUN_CASES = {  # case: (arguments, what its one line must say)
    "unknown scenario": (["--scenario", "freeze_everything"], "unknown scenario 'freeze_everything'"),
    "unknown task": (["--tasks", "topic,emotion"], "unknown task 'emotion'"),
    "empty task list": (["--tasks", ","], "no task given"),
    "frozen_head_b with one task": (["--scenario", "frozen_head_b", "--tasks", "ner"],
                                    "'frozen_head_b' needs at least 2 tasks"),
    "missing --init-from model": (["--init-from", "{tmp}/nope.keras"], "nope.keras' does not exist"),
    "corrupt --init-from model": (["--init-from", "{tmp}/garbage.keras"],
                                  "garbage.keras' is not a .keras archive"),
    "finished output dir": (["--output-dir", "{finished}"], "holds a finished run"),
    "negative batch size": (["--batch-size", "-4"], "--batch-size must be in .*got -4"),
    "learning rate nan": (["--learning-rate", "nan"], "--learning-rate must be in .*got nan"),
    "negative learning rate": (["--learning-rate", "-1"], "--learning-rate must be in .*got -1"),
    "negative loss weight": (["--loss-weights", "topic=-1"], "loss weight topic=-1.0 must be"),
    "loss weight nan": (["--loss-weights", "topic=nan"], "loss weight topic=nan must be"),
    "train cap of a task not run": (["--train-examples", "ner=10"],
                                    "names task 'ner', which this run does not train"),
    "train cap below 0": (["--train-examples", "topic=-1"],
                          "topic=-1: a cap must be a whole number >= 0"),
    "every task held": (["--tasks", "topic", "--train-examples", "topic=0"],
                        "holds every task at 0: nothing would train"),
    "train cap not whole": (["--train-examples", "topic=2.5"], "'topic=2.5' is not task=whole"),
    "dropout 1": (["--dropout", "1"], "--dropout must be in .*got 1.0"),
    "output dir is a file": (["--output-dir", "{tmp}/garbage.keras"],
                             "--output-dir .*garbage.keras' is a file"),
    "output dir under a file": (["--output-dir", "{tmp}/garbage.keras/run"],
                                "garbage.keras/run' cannot be created .*Not a directory"),
    "output dir cannot be created": (["--output-dir", "/proc/mtl-keras-run"],
                                     "'/proc/mtl-keras-run' cannot be created"),
    "data dir is a file": (["--data-dir", "{tmp}/garbage.keras"],
                           "data dir .*garbage.keras' is a file"),
    "preset config.json not JSON": (["--preset", "{tmp}/not_json"],
                                    "not_json/config.json' is not readable JSON"),
    "preset config.json wrong value type": (["--preset", "{tmp}/wrong_type"],
                                            "wrong_type/config.json' does not describe a BERT"),
    "preset with unloadable values": (["--preset", "{tmp}/bad_values"],
                                      "bad_values' could not be loaded as a BERT preset"),
    "max length beyond the positions": (["--max-length", "4096"],
                                        "--max-length 4096 exceeds the encoder's 32 positions"),
    "huge lora rank": (["--scenario", "lora", "--lora-rank", "100000"],
                       "--lora-rank 100000 exceeds the encoder's width 16"),
}  # fmt: skip


def write_bad_presets(folder, tiny_preset):
    (folder / "not_json").mkdir()
    (folder / "not_json" / "config.json").write_text("{not json")
    (folder / "wrong_type").mkdir()
    config = '{"config": {"max_sequence_length": "long", "hidden_dim": 16}}'
    (folder / "wrong_type" / "config.json").write_text(config)
    bad = shutil.copytree(tiny_preset, folder / "bad_values")  # the whole preset, assets too
    text = (bad / "config.json").read_text().replace('"num_heads": 2', '"num_heads": "two"')
    (bad / "config.json").write_text(text)


@pytest.fixture(scope="module")
def bad_files(tiny_preset, tmp_path_factory):
    """The broken presets and model file the run cases point at: written once (only read)."""
    folder = tmp_path_factory.mktemp("bad_files")
    (folder / "garbage.keras").write_bytes(b"\x00" * 100)
    write_bad_presets(folder, tiny_preset)
    return folder


@pytest.mark.parametrize("case", RUN_CASES)
def test_run_cli_error(tmp_path, capsys, tiny_run, tiny_preset, tiny_data_dir, bad_files, case):
    arguments, reason = RUN_CASES[case]
    argv = [a.format(tmp=bad_files, finished=tiny_run) for a in arguments]
    if "--preset" not in argv:
        argv += ["--preset", str(tiny_preset)]
    if "--data-dir" not in argv:
        argv += ["--data-dir", str(tiny_data_dir)]
    if "--max-length" not in argv:  # the tiny preset has 32 positions, the default is 128
        argv += ["--max-length", "16"]
    argv = argv if "--output-dir" in argv else [*argv, "--output-dir", str(tmp_path / "out")]
    assert re.search(reason, one_line_exit_2(capsys, run.main, argv)), reason
    assert not (tmp_path / "out" / "metrics.json").exists()


EXPORT_CASES = {  # case: (arguments, what its one line must say)
    "missing model": (["--model", "{tmp}/nope.keras", "--output", "{tmp}/m/1"],
                      "nope.keras' does not exist"),
    "truncated model": (["--model", "{tmp}/truncated.keras", "--tokenizer", "{run}/tokenizer",
                         "--output", "{tmp}/m/1"], "truncated.keras' is not a .keras archive"),
    "no version dir": (["--model", "{run}/model.keras", "--output", "{tmp}/m"],
                       "does not end in a version number"),
    "no tokenizer": (["--model", "{run}/model.keras", "--tokenizer", "{tmp}", "--output",
                      "{tmp}/m/2"], "no tokenizer in"),
    # Both are wrong: the model's fault is named (it is the real cause), not the tokenizer's.
    "garbage model beside no tokenizer": (["--model", "{tmp}/truncated.keras", "--output",
                                           "{tmp}/m/3"], "truncated.keras' is not a .keras"),
}  # fmt: skip


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_export_cli_error(tmp_path, capsys, tiny_run, case):
    (tmp_path / "truncated.keras").write_bytes((tiny_run / "model.keras").read_bytes()[:1000])
    arguments, reason = EXPORT_CASES[case]
    argv = [a.format(tmp=tmp_path, run=tiny_run) for a in arguments]
    err = one_line_exit_2(capsys, export.main, argv)
    assert re.search(reason, err), reason
    if case == "garbage model beside no tokenizer":
        assert "tokenizer" not in err  # the real cause only


PREDICT_CASES = {  # case: (arguments, what its one line must say)
    "no texts and no input": ([], "give texts on the command line or --input"),
    "texts and input": (["x", "--input", "{tmp}/texts.txt"], "one of the two"),
    "missing input file": (["--input", "{tmp}/nope.txt"], "nope.txt' does not exist"),
    "input is a folder": (["--input", "{tmp}/folder.txt"], "folder.txt' cannot be read"),
    "input not UTF-8": (["--input", "{tmp}/latin1.txt"], "latin1.txt' line 2 is not UTF-8"),
    "unknown input kind": (["--input", "{tmp}/texts.xml"], "texts.xml' must end in .txt"),
    "csv without text column": (["--input", "{tmp}/no_column.csv"],
                                "no_column.csv' has no 'text' column"),
    "csv row without text value": (["--input", "{tmp}/short_row.csv"],
                                   "short_row.csv' line 3 has no 'text' value"),
    "csv without the --column": (["--input", "{tmp}/texts.csv", "--column", "body"],
                                 "texts.csv' has no 'body' column"),
    "jsonl line not JSON": (["--input", "{tmp}/broken.jsonl"], "broken.jsonl' line 2 is not JSON"),
    "jsonl text not a string": (["--input", "{tmp}/number.jsonl"],
                                "number.jsonl' line 1 has no string 'text' field"),
    "jsonl without the --column": (["--input", "{tmp}/later.jsonl", "--column", "body"],
                                   "later.jsonl' line 3 has no string 'body' field"),
    "output not .jsonl": (["x", "--output", "{tmp}/out.csv"], "out.csv' must end in .jsonl"),
    "corrupt model": (["x", "--model", "{tmp}/garbage.keras"],
                      "garbage.keras' is not a .keras archive"),
}  # fmt: skip


def write_predict_inputs(folder):
    (folder / "texts.txt").write_text("the fox\n")
    (folder / "folder.txt").mkdir()
    (folder / "latin1.txt").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    (folder / "texts.xml").write_text("<t/>")
    (folder / "no_column.csv").write_text("body\nthe fox\n")
    (folder / "broken.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    (folder / "number.jsonl").write_text('{"text": 3}\n')
    (folder / "garbage.keras").write_bytes(b"\x00" * 100)
    (folder / "short_row.csv").write_text("id,text\n1,the fox\n2\n")
    (folder / "texts.csv").write_text("id,text\n1,the fox\n")
    (folder / "later.jsonl").write_text('{"body": "a"}\n\n{"text": "b"}\n')


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_cli_error(tmp_path, capsys, tiny_run, case):
    write_predict_inputs(tmp_path)
    arguments, reason = PREDICT_CASES[case]
    argv = [a.format(tmp=tmp_path) for a in arguments]
    if "--model" not in argv:
        argv = [*argv, "--model", str(tiny_run / "model.keras")]
    err = one_line_exit_2(capsys, predict.main, [*argv, "--max-length", "16"])
    assert re.search(reason, err), reason


@pytest.mark.parametrize("case", VALID_TEXT)
def test_exported_signature_valid_text(exported, encoder, case):
    result = exported(text=tf.constant([VALID_TEXT[case], "the fox"]))
    embedding = result["embedding"].numpy()
    assert embedding.shape == (2, 16) and np.isfinite(embedding).all()
    alone = exported(text=tf.constant([VALID_TEXT[case]]))
    np.testing.assert_allclose(embedding[0], alone["embedding"].numpy()[0], atol=1e-5)
    assert result["topic_label"].numpy()[0] == alone["topic_label"].numpy()[0]
    if case in SAME_PIECES:
        same = exported(text=tf.constant([SAME_PIECES[case]]))["embedding"].numpy()
        np.testing.assert_allclose(embedding[0], same[0], atol=1e-5)


def test_exported_signature_invalid_utf8_dropped_like_encode(exported):
    dirty = exported(text=tf.constant([b"the fo\xffx", b"the fox"]))["embedding"].numpy()
    np.testing.assert_allclose(dirty[0], dirty[1], atol=1e-6)


def test_encode_lone_surrogate_dropped(encoder):
    np.testing.assert_allclose(encoder.encode(["a\udcffb"]), encoder.encode(["ab"]), atol=1e-6)


def test_embed_cli_undecodable_argv(tiny_preset):
    argv = [b"-m", b"experiments.embed", b"--preset", str(tiny_preset).encode(),
            b"--max-length", b"16", b"--show", b"16", b"the fo\xffx", b"the fox", b"the box"]  # fmt: skip
    result = subprocess.run([sys.executable.encode(), *argv], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = [line.split(b"first=")[1] for line in result.stdout.splitlines() if b"first=" in line]
    assert len(shown) == 3 and shown[0] == shown[1] != shown[2]  # the byte dropped, nothing else


def test_exported_signature_empty_batch(exported):
    assert exported(text=tf.constant([], tf.string))["embedding"].shape[0] == 0


def test_exported_signature_numbers_instead_of_strings(exported):
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        exported(text=tf.constant([1, 2]))


def test_data_unknown_dataset(tmp_path):
    with pytest.raises(UserError, match="unknown dataset"):
        get_builder("imdb_reviews", tmp_path)


def test_data_unprepared_data_dir(tmp_path):
    with pytest.raises(UserError, match="not prepared"):
        load("wnut16", "train", tmp_path / "empty", prepare=False)


def test_data_unknown_split(tmp_path):
    with pytest.raises(UserError, match="unknown split"):
        load("wnut16", "dev", tmp_path)


def test_data_cli_unknown_dataset_exit_2(tmp_path):
    argv = ["stats", "--data-dir", str(tmp_path), "--datasets", "imdb"]
    result = subprocess.run(
        [sys.executable, "-m", "experiments.data", *argv], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    err = result.stderr.strip()
    assert result.returncode == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err


OWN_FILE_CASES = {  # case: ({file: content}, extra arguments, what its one line must say)
    "columns of no kind": ({"mine.csv": "body,category\nhi,a\nho,b\n"}, [],
                           "has columns body, category, which name no task kind"),
    "forced kind missing a column": ({"mine.csv": "text,label\nhi,a\nho,b\n"},
                                     ["--task-kind", "mine=pair"], "has no 'sentence1' column"),
    "unknown kind": ({"mine.csv": "text,label\nhi,a\nho,b\n"}, ["--task-kind", "mine=regression"],
                     "unknown task kind 'regression'"),
    "empty file": ({"mine.csv": ""}, [], "mine.csv' has no examples"),
    "header only": ({"mine.csv": "text,label\n"}, [], "mine.csv' has no examples"),
    "one class": ({"mine.csv": "text,label\nhi,a\nho,a\n"}, [], "has one class \\(a\\)"),
    "line not JSON": ({"mine.jsonl": '{"text": "hi", "label": "a"}\n{text: ho}\n'}, [],
                      "mine.jsonl' line 2 is not JSON"),
    "score not a number": ({"mine.tsv": "sentence1\tsentence2\tscore\na\tb\thigh\n"}, [],
                           "mine.tsv' line 2: score 'high' is not a number"),
    "CoNLL line with one column": ({"mine.conll": "Paris B-loc\nis\n"}, [],
                                   "mine.conll' line 2 has one column"),
    "text not a string": ({"mine.jsonl": '{"text": 5, "label": "a"}\n'}, [],
                          "line 1: 'text' is int, not a string"),
    "invalid UTF-8": ({"mine.csv": b"text,label\nhi,a\nh\xffo,b\n"}, [],
                      "mine.csv' line 3 is not UTF-8"),
    "folder without a training file": ({"mine/test.csv": "text,label\nhi,a\n"}, [],
                                       "has no training file"),
    "name clash": ({"mine.csv": "text,label\nhi,a\nho,b\n"}, ["--task", "topic={tmp}/mine.csv"],
                   "task name 'topic' is a built-in task's"),
    "name not an identifier": ({"mine.csv": "text,label\nhi,a\nho,b\n"},
                               ["--task", "my-task={tmp}/mine.csv"], "must be letters, digits"),
    "label unseen in training": ({"mine/train.csv": "text,label\nhi,a\nho,b\n",
                                  "mine/dev.csv": "text,label\nhey,c\n"}, [],
                                 "dev.csv' line 2: label 'c' never occurs in the training"),
    "hard negatives with a gap": ({"mine.jsonl": '{"anchor": "a", "positive": "b", "negative_2": "c"}\n'},
                                  [], "line 1: hard-negative columns negative_2: number them negative_1"),
    "empty hard negative": ({"mine.csv": "anchor,positive,negative\na,b,c\nd,e, \n"}, [],
                            "mine.csv' line 3: 'negative' is empty"),
    "multi-label without any label": ({"mine.jsonl": '{"text": "hi", "labels": []}\n'}, [],
                                      "its training file has no labels"),
    "multi-label labels not a list": ({"mine.jsonl": '{"text": "hi", "labels": 3}\n'}, [],
                                      "line 1: 'labels' must be a list"),
    "unknown file type": ({"mine.xlsx": "x"}, [], "mine.xlsx' must end in one of"),
    "--task without =": ({}, ["--task", "mine"], "--task 'mine' is not NAME=VALUE"),
    "--task-columns without a colon": ({"mine.csv": "body,category\nhi,a\nho,b\n"},
                                       ["--task-columns", "mine=text=body"],
                                       "--task-columns 'text=body' is not OURS:THEIRS"),
    "--task-kind of no task": ({"mine.csv": "text,label\nhi,a\nho,b\n"},
                               ["--task-kind", "other=sentence"], "names 'other', which no --task"),
    "tokens and tags of different lengths": ({"mine.jsonl": '{"tokens": ["Ada", "saw"], "tags": ["B-per"]}\n'},
                                             [], "line 1: 2 tokens but 1 tags"),
    "empty text": ({"mine.csv": "text,label\nhi,a\n  ,b\n"}, [], "mine.csv' line 3: 'text' is empty"),
    "JSONL line not an object": ({"mine.jsonl": '{"text": "hi", "label": "a"}\n["ho", "b"]\n'}, [],
                                 "mine.jsonl' line 2 is not a JSON object"),
    "files of mixed kinds": ({"mine/train.csv": "text,label\nhi,a\nho,b\n",
                              "mine/dev.csv": "text,labels\nhey,a|b\n"}, [],
                             "are of different kinds \\(multi_label, sentence\\)"),
    "ragged CSV row": ({"mine.csv": "text,label\nhi,a\nho\nhe,b\n"}, [],
                       "mine.csv' line 3 does not have one value per column"),
    "constant pair score": ({"mine.tsv": "sentence1\tsentence2\tscore\na\tb\t2\nc\td\t2\n"}, [],
                            "task 'mine': every training score is 2.0"),
    "non-finite pair score": ({"mine.tsv": "sentence1\tsentence2\tscore\na\tb\t1\nc\td\tinf\n"},
                              [], "mine.tsv' line 3: score inf is not a finite number"),
}  # fmt: skip


@pytest.mark.parametrize("case", OWN_FILE_CASES)
def test_run_cli_own_file_error(tmp_path, capsys, tiny_preset, tiny_data_dir, case):
    """Found from the files alone: one line, exit 2, no output folder."""
    files, extra, reason = OWN_FILE_CASES[case]
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    target = tmp_path / next(iter(files), "mine.csv").split("/")[0]
    given = [a.format(tmp=tmp_path) for a in extra]
    argv = given if "--task" in given else ["--task", f"mine={target}", *given]
    argv += ["--preset", str(tiny_preset), "--data-dir", str(tiny_data_dir), "--max-length",
             "16", "--output-dir", str(tmp_path / "out")]  # fmt: skip
    assert re.search(reason, one_line_exit_2(capsys, run.main, argv)), reason
    assert not (tmp_path / "out").exists()
