"""The bad-input corpus across the public surfaces: defined behaviour or a one-line error.

Every case is its own test, so one failure cannot hide the rest; the summary at the end
of a pytest run counts them (see `pytest_runtest_logreport` in conftest.py).
"""

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
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad_input_serving") / "mtl" / "1"
    export.main(
        ["--model", str(tiny_run / "model.keras"), "--output", str(out), "--max-length", "16"]
    )
    return tf.saved_model.load(str(out)).signatures["serving_default"]


@pytest.mark.parametrize("case", VALID_TEXT)
def test_encode_valid_text(encoder, case):
    out = encoder.encode([VALID_TEXT[case], "the fox"])
    assert out.shape == (2, 16) and np.isfinite(out).all()


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
    "argv",
    [["--max-length", "0", "x"], ["--preset", "/nonexistent", "x"]],
    ids=["--max-length 0", "missing preset"],
)
def test_embed_cli_error(tiny_preset, capsys, argv):
    argv = argv if "--preset" in argv else ["--preset", str(tiny_preset), *argv]
    one_line_exit_2(capsys, embed.main, argv)


RUN_CASES = {
    "unknown scenario": ["--scenario", "freeze_everything"],
    "unknown task": ["--tasks", "topic,emotion"],
    "empty task list": ["--tasks", ","],
    "frozen_head_b with one task": ["--scenario", "frozen_head_b", "--tasks", "ner"],
    "missing --init-from model": ["--init-from", "{tmp}/nope.keras"],
    "corrupt --init-from model": ["--init-from", "{tmp}/garbage.keras"],
    "finished output dir": ["--output-dir", "{finished}"],
    "negative batch size": ["--batch-size", "-4"],
    "learning rate nan": ["--learning-rate", "nan"],
    "negative learning rate": ["--learning-rate", "-1"],
    "negative loss weight": ["--loss-weights", "topic=-1"],
    "loss weight nan": ["--loss-weights", "topic=nan"],
    "train cap of a task not run": ["--train-examples", "ner=10"],
    "train cap 0": ["--train-examples", "topic=0"],
    "train cap not whole": ["--train-examples", "topic=2.5"],
    "dropout 1": ["--dropout", "1"],
    "output dir is a file": ["--output-dir", "{tmp}/garbage.keras"],
    "output dir under a file": ["--output-dir", "{tmp}/garbage.keras/run"],
    "output dir cannot be created": ["--output-dir", "/proc/mtl-keras-run"],
    "data dir is a file": ["--data-dir", "{tmp}/garbage.keras"],
    "preset config.json not JSON": ["--preset", "{tmp}/not_json"],
    "preset config.json wrong value type": ["--preset", "{tmp}/wrong_type"],
    "preset with unloadable values": ["--preset", "{tmp}/bad_values"],
    "max length beyond the positions": ["--max-length", "4096"],
    "huge lora rank": ["--scenario", "lora", "--lora-rank", "100000"],
}


def write_bad_presets(folder, tiny_preset):
    (folder / "not_json").mkdir()
    (folder / "not_json" / "config.json").write_text("{not json")
    (folder / "wrong_type").mkdir()
    config = '{"config": {"max_sequence_length": "long", "hidden_dim": 16}}'
    (folder / "wrong_type" / "config.json").write_text(config)
    bad = folder / "bad_values"
    bad.mkdir()
    for item in tiny_preset.iterdir():
        if item.is_file():
            (bad / item.name).write_bytes(item.read_bytes())
    text = (bad / "config.json").read_text().replace('"num_heads": 2', '"num_heads": "two"')
    (bad / "config.json").write_text(text)


@pytest.mark.parametrize("case", RUN_CASES)
def test_run_cli_error(tmp_path, capsys, tiny_run, tiny_preset, tiny_data_dir, case):
    (tmp_path / "garbage.keras").write_bytes(b"\x00" * 100)
    write_bad_presets(tmp_path, tiny_preset)
    argv = [a.format(tmp=tmp_path, finished=tiny_run) for a in RUN_CASES[case]]
    if "--preset" not in argv:
        argv += ["--preset", str(tiny_preset)]
    if "--data-dir" not in argv:
        argv += ["--data-dir", str(tiny_data_dir)]
    argv = argv if "--output-dir" in argv else [*argv, "--output-dir", str(tmp_path / "out")]
    one_line_exit_2(capsys, run.main, argv)
    assert not (tmp_path / "out" / "metrics.json").exists()


EXPORT_CASES = {
    "missing model": ["--model", "{tmp}/nope.keras", "--output", "{tmp}/m/1"],
    "truncated model": [
        "--model",
        "{tmp}/truncated.keras",
        "--tokenizer",
        "{run}/tokenizer",
        "--output",
        "{tmp}/m/1",
    ],
    "no version dir": ["--model", "{run}/model.keras", "--output", "{tmp}/m"],
    "no tokenizer": [
        "--model",
        "{run}/model.keras",
        "--tokenizer",
        "{tmp}",
        "--output",
        "{tmp}/m/2",
    ],
}


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_export_cli_error(tmp_path, capsys, tiny_run, case):
    (tmp_path / "truncated.keras").write_bytes((tiny_run / "model.keras").read_bytes()[:1000])
    argv = [a.format(tmp=tmp_path, run=tiny_run) for a in EXPORT_CASES[case]]
    err = one_line_exit_2(capsys, export.main, argv)
    if case == "garbage model beside no tokenizer":
        assert "truncated.keras" in err and "tokenizer" not in err  # the real cause


PREDICT_CASES = {
    "no texts and no input": [],
    "texts and input": ["x", "--input", "{tmp}/texts.txt"],
    "missing input file": ["--input", "{tmp}/nope.txt"],
    "input is a folder": ["--input", "{tmp}/folder.txt"],
    "input not UTF-8": ["--input", "{tmp}/latin1.txt"],
    "unknown input kind": ["--input", "{tmp}/texts.xml"],
    "csv without text column": ["--input", "{tmp}/no_column.csv"],
    "jsonl line not JSON": ["--input", "{tmp}/broken.jsonl"],
    "jsonl text not a string": ["--input", "{tmp}/number.jsonl"],
    "output not .jsonl": ["x", "--output", "{tmp}/out.csv"],
    "corrupt model": ["x", "--model", "{tmp}/garbage.keras"],
}


def write_predict_inputs(folder):
    (folder / "texts.txt").write_text("the fox\n")
    (folder / "folder.txt").mkdir()
    (folder / "latin1.txt").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    (folder / "texts.xml").write_text("<t/>")
    (folder / "no_column.csv").write_text("body\nthe fox\n")
    (folder / "broken.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    (folder / "number.jsonl").write_text('{"text": 3}\n')
    (folder / "garbage.keras").write_bytes(b"\x00" * 100)


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_cli_error(tmp_path, capsys, tiny_run, case):
    write_predict_inputs(tmp_path)
    argv = [a.format(tmp=tmp_path) for a in PREDICT_CASES[case]]
    if "--model" not in argv:
        argv = [*argv, "--model", str(tiny_run / "model.keras")]
    one_line_exit_2(capsys, predict.main, [*argv, "--max-length", "16"])


@pytest.mark.parametrize("case", VALID_TEXT)
def test_exported_signature_valid_text(exported, case):
    result = exported(text=tf.constant([VALID_TEXT[case], "the fox"]))
    assert result["embedding"].shape == (2, 16) and np.isfinite(result["embedding"].numpy()).all()
    assert result["topic_label"].shape == (2,)


def test_exported_signature_invalid_utf8_dropped_like_encode(exported):
    dirty = exported(text=tf.constant([b"the fo\xffx", b"the fox"]))["embedding"].numpy()
    np.testing.assert_allclose(dirty[0], dirty[1], atol=1e-6)


def test_encode_lone_surrogate_dropped(encoder):
    np.testing.assert_allclose(encoder.encode(["a\udcffb"]), encoder.encode(["ab"]), atol=1e-6)


def test_embed_cli_undecodable_argv(tiny_preset):
    argv = [
        b"-m",
        b"experiments.embed",
        b"--preset",
        str(tiny_preset).encode(),
        b"--max-length",
        b"16",
        b"the fo\xffx",
    ]
    result = subprocess.run([sys.executable.encode(), *argv], capture_output=True)
    assert result.returncode == 0, result.stderr[-2000:]


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
        [sys.executable, "-m", "experiments.data", *argv], capture_output=True, text=True
    )
    err = result.stderr.strip()
    assert result.returncode == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
