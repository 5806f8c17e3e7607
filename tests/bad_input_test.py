"""The bad-input corpus across the public surfaces: defined behaviour or a one-line error."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from experiments import embed, export, run
from experiments.cli import run_main
from mtl_keras import SentenceEncoder
from mtl_keras.data import get_builder, load
from mtl_keras.errors import UserError
from tests.conftest import BAD_INPUT_RESULTS

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


def record(surface, case, check):
    """Run `check()`; record whether it passed, then re-raise its failure."""
    try:
        check()
    except BaseException:
        BAD_INPUT_RESULTS.append((surface, case, False))
        raise
    BAD_INPUT_RESULTS.append((surface, case, True))


def one_line_exit_2(capsys, main, argv):
    with pytest.raises(SystemExit) as info:
        run_main(main, argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("error: ") and "\n" not in err, err


@pytest.fixture(scope="module")
def encoder(tiny_preset):
    return SentenceEncoder.from_preset(tiny_preset, max_length=16)


def test_encode(encoder):
    for case, text in VALID_TEXT.items():

        def check(text=text):
            out = encoder.encode([text, "the fox"])
            assert out.shape == (2, 16) and np.isfinite(out).all()

        record("encode", case, check)
    for case, item in INVALID_ITEMS.items():

        def check(item=item):
            with pytest.raises(TypeError, match=r"sentences\[1\]"):
                encoder.encode(["ok", item])

        record("encode", case, check)
    for case, value in {"top-level None": None, "top-level int": 42}.items():

        def check(value=value):
            with pytest.raises(TypeError, match="list of str"):
                encoder.encode(value)

        record("encode", case, check)


def test_embed_cli(tiny_preset, capsys):
    def valid():
        out = embed.main(["--preset", str(tiny_preset), "--max-length", "16", *VALID_TEXT.values()])
        assert out.shape == (len(VALID_TEXT), 16) and np.isfinite(out).all()

    record("experiments.embed", "every valid text at once", valid)
    record(
        "experiments.embed",
        "--max-length 0",
        lambda: one_line_exit_2(
            capsys, embed.main, ["--preset", str(tiny_preset), "--max-length", "0", "x"]
        ),
    )
    record(
        "experiments.embed",
        "missing preset",
        lambda: one_line_exit_2(capsys, embed.main, ["--preset", "/nonexistent", "x"]),
    )


def test_run_cli(tmp_path, capsys, tiny_run):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"\x00" * 100)
    cases = {
        "unknown scenario": ["--scenario", "freeze_everything"],
        "unknown task": ["--tasks", "topic,emotion"],
        "empty task list": ["--tasks", ","],
        "frozen_head_b with one task": ["--scenario", "frozen_head_b", "--tasks", "ner"],
        "missing --init-from model": ["--init-from", str(tmp_path / "nope.keras")],
        "corrupt --init-from model": ["--init-from", str(garbage)],
        "finished output dir": ["--output-dir", str(tiny_run)],
        "negative batch size": ["--batch-size", "-4"],
    }
    for case, argv in cases.items():
        argv = argv if "--output-dir" in argv else [*argv, "--output-dir", str(tmp_path / "out")]
        record("experiments.run", case, lambda argv=argv: one_line_exit_2(capsys, run.main, argv))


def test_export_cli(tmp_path, capsys, tiny_run):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((tiny_run / "model.keras").read_bytes()[:1000])
    cases = {
        "missing model": [
            "--model",
            str(tmp_path / "nope.keras"),
            "--output",
            str(tmp_path / "m" / "1"),
        ],
        "truncated model": [
            "--model",
            str(truncated),
            "--tokenizer",
            str(tiny_run / "tokenizer"),
            "--output",
            str(tmp_path / "m" / "1"),
        ],
        "no version dir": [
            "--model",
            str(tiny_run / "model.keras"),
            "--output",
            str(tmp_path / "m"),
        ],
        "no tokenizer": [
            "--model",
            str(tiny_run / "model.keras"),
            "--tokenizer",
            str(tmp_path),
            "--output",
            str(tmp_path / "m" / "2"),
        ],
    }
    for case, argv in cases.items():
        record(
            "experiments.export", case, lambda argv=argv: one_line_exit_2(capsys, export.main, argv)
        )


def test_exported_signature(tiny_run, tmp_path):
    out = export.main(
        [
            "--model",
            str(tiny_run / "model.keras"),
            "--output",
            str(tmp_path / "mtl" / "1"),
            "--max-length",
            "16",
        ]
    )
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    for case, text in VALID_TEXT.items():

        def check(text=text):
            result = serve(text=tf.constant([text, "the fox"]))
            assert (
                result["embedding"].shape == (2, 16)
                and np.isfinite(result["embedding"].numpy()).all()
            )
            assert result["topic_label"].shape == (2,)

        record("exported signature", case, check)

    def empty_batch():
        assert serve(text=tf.constant([], tf.string))["embedding"].shape[0] == 0

    record("exported signature", "empty batch", empty_batch)

    def wrong_dtype():
        with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
            serve(text=tf.constant([1, 2]))

    record("exported signature", "numbers instead of strings", wrong_dtype)


def test_data_loading(tmp_path):
    def unknown():
        with pytest.raises(UserError, match="unknown dataset"):
            get_builder("imdb_reviews", tmp_path)

    record("data builders", "unknown dataset", unknown)

    def unprepared():
        with pytest.raises(UserError, match="not prepared"):
            load("wnut16", "train", tmp_path / "empty", prepare=False)

    record("data builders", "unprepared data dir", unprepared)

    def bad_split():
        with pytest.raises(UserError, match="unknown split"):
            load("wnut16", "dev", tmp_path)

    record("data builders", "unknown split", bad_split)


def test_data_cli_unknown_dataset_exit_2(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.data",
            "stats",
            "--data-dir",
            str(tmp_path),
            "--datasets",
            "imdb",
        ],
        capture_output=True,
        text=True,
    )
    record(
        "experiments.data",
        "unknown dataset",
        lambda: (
            (
                result.returncode == 2
                and result.stderr.strip().startswith("error: ")
                and len(result.stderr.strip().splitlines()) == 1
            )
            or pytest.fail(result.stderr[-500:])
        ),
    )
