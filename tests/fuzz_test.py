"""Property-style: generated options, paths and texts thrown at every tool and the API.

For every case: no traceback (only `SystemExit` leaves a tool, and the API raises only
`UserError`s), exit code 0 or 2, and a rejected run leaves no finished-run artefacts.
The cases are drawn from a fixed seed, so a failure names a case that can be rerun; the
number of cases tried is printed in the pytest summary.
"""

import csv
import io
import json
import os
import random

import numpy as np
import pytest

from experiments import embed, export, predict, run
from experiments.cli import run_main
from mtl_keras import Predictor, RunConfig, SentenceEncoder
from mtl_keras.encoding.inputs import read_texts
from mtl_keras.errors import UserError
from tests.conftest import FUZZ_CASES

NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1", "3", "0.5", "1e-300", "1e308", str(2**63),
           "-0", "abc", ""]  # fmt: skip
PATHS = ["file.txt", "file.txt/sub", "folder", "missing/deeper", "random.bin",
         "/proc/mtl-keras-fuzz", ""]  # fmt: skip
RUN_NUMBERS = ["--epochs", "--batch-size", "--max-length", "--learning-rate", "--weight-decay",
               "--dropout", "--max-train-examples", "--max-eval-examples", "--temperature",
               "--seed", "--logical-cpus", "--frozen-layers", "--unfreeze-every",
               "--layer-decay", "--head-lr-multiplier", "--lora-rank"]  # fmt: skip
RUN_PATHS = ["--output-dir", "--preset", "--init-from", "--data-dir"]


def random_text(rng):
    """Random bytes as Python decodes them from argv or files (lone surrogates included)."""
    return os.fsdecode(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))


def case_paths(folder, rng):
    folder.mkdir(parents=True)
    (folder / "file.txt").write_text("x")
    (folder / "folder").mkdir()
    (folder / "random.bin").write_bytes(bytes(rng.randrange(256) for _ in range(300)))
    return [p if p.startswith("/") or not p else str(folder / p) for p in PATHS]


def text_file(path, rng, valid=False):
    """A texts file for `--input` / `read_texts`: a valid one of its kind (random words,
    some not ASCII) when `valid` and half the other times, else random bytes."""
    if not valid and rng.random() < 0.5:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(100))))
        return path
    words = ["the", "fox", "café", "😀", "a,b", '"q"', "Привет", "stocks"]
    texts = [
        " ".join(rng.choices(words, k=rng.randrange(1, 6))) for _ in range(rng.randrange(1, 5))
    ]
    if path.suffix == ".csv":
        rows = io.StringIO()
        csv.writer(rows).writerows([["id", "text"], *([i, t] for i, t in enumerate(texts))])
        content = rows.getvalue()
    elif path.suffix == ".jsonl":
        content = "\n".join(json.dumps({"text": t}) for t in texts)
    else:
        content = "\n".join(texts)
    path.write_text(content, encoding="utf-8")
    return path


def exit_code(capsys, main, argv, surface, case):
    try:
        run_main(main, argv)
        code = 0
    except SystemExit as error:
        code = error.code
    err = capsys.readouterr().err
    ok = code in (0, 2) and "Traceback" not in err
    if code == 2:  # one line that says what is wrong, and nothing after it
        lines = err.strip().splitlines()
        ok = ok and bool(lines) and lines[-1].startswith("error: ")
        ok = ok and sum(line.startswith("error: ") for line in lines) == 1
    FUZZ_CASES.append((surface, case, ok, code))
    assert ok, (surface, case, argv, code, err[-500:])
    return code


def assert_accepted(minimum):
    """At least `minimum[surface]` of this test's cases were accepted: a surface that
    rejected everything with a user error would pass every other check here."""
    for surface, least in minimum.items():
        cases = [code for s, _, _, code in FUZZ_CASES if s == surface]
        accepted = cases.count(0)
        assert accepted >= least, f"{surface}: {accepted} of {len(cases)} accepted, want {least}"


def test_run(tiny_preset, tiny_data_dir, tmp_path, capsys):
    rng = random.Random(1)
    for case in range(40):
        folder = tmp_path / f"case{case}"
        paths = case_paths(folder, rng)
        argv = ["--preset", str(tiny_preset), "--data-dir", str(tiny_data_dir),
                "--output-dir", str(folder / "out"), "--scenario", "frozen_backbone",
                "--epochs", "1", "--max-length", "16", "--verbose", "0",
                "--max-train-examples", "4", "--max-eval-examples", "4"]  # fmt: skip
        for _ in range(rng.choice([1, 1, 2])):
            if rng.random() < 0.7:
                argv += [rng.choice(RUN_NUMBERS), rng.choice(NUMBERS)]
            else:
                option = rng.choice(RUN_PATHS)
                choices = [p for p in paths if option != "--data-dir" or not p.endswith("folder")]
                argv += [option, rng.choice(choices)]
        code = exit_code(capsys, run.main, argv, "experiments.run", case)
        out = argv[len(argv) - argv[::-1].index("--output-dir")]
        finished = os.path.isfile(os.path.join(out, "metrics.json"))
        assert finished == (code == 0), (case, argv, code)
        if code == 2:
            assert not os.path.exists(os.path.join(out, "model.keras")), (case, argv)
    assert_accepted({"experiments.run": 3})


def test_embed_predict_export(tiny_preset, tiny_run, tmp_path, capsys):
    rng = random.Random(2)
    model = str(tiny_run / "model.keras")
    for case in range(45):
        paths = case_paths(tmp_path / f"case{case}", rng)
        texts = [random_text(rng) for _ in range(rng.randrange(1, 4))]
        # Some cases keep every argument valid but the texts, so each tool must accept
        # some: three each of embed and predict, two of export (an accepted export writes a
        # SavedModel, seconds each); the others draw each argument from good and bad ones.
        clean = case % 15 < 2 or case == 2 or case == 32

        def pick(good, bad, clean=clean):
            return good if clean else rng.choice([good, *bad])

        ends = ["--"] if clean else []  # a text may start with "-": `--` ends the options
        number = rng.choice(NUMBERS)
        tool = ["embed", "predict", "export"][case % 3]
        if tool == "embed":
            preset = pick(str(tiny_preset), paths)
            argv = ["--preset", preset, "--max-length", pick("16", [number]), *ends, *texts]
            code = exit_code(capsys, embed.main, argv, "experiments.embed", case)
        elif tool == "predict":
            inputs = tmp_path / f"case{case}" / rng.choice(["in.txt", "in.csv", "in.jsonl"])
            source = rng.choice([[*ends, *texts], ["--input", str(text_file(inputs, rng, clean))]])
            option = rng.choice(["--batch-size", "--max-length"])
            good = {"--batch-size": "4", "--max-length": "16"}[option]
            argv = ["--model", pick(model, paths), option, pick(good, [number])]
            if rng.random() < 0.5:
                argv += ["--output", pick(str(tmp_path / f"case{case}/o.jsonl"), paths)]
            if "--max-length" not in argv:
                argv += ["--max-length", "16"]
            code = exit_code(capsys, predict.main, [*argv, *source], "experiments.predict", case)
        else:
            output = pick(str(tmp_path / f"case{case}" / "m" / "1"), paths)
            argv = ["--model", pick(model, paths), "--output", output,
                    "--max-length", pick("16", [number])]  # fmt: skip
            code = exit_code(capsys, export.main, argv, "experiments.export", case)
        assert code == 0 or not clean, (tool, case, argv)  # valid arguments are accepted
    assert_accepted({"experiments.embed": 3, "experiments.predict": 3, "experiments.export": 2})


def api_call(surface, case, call):
    try:
        call()
    except UserError as error:
        one_line = bool(str(error).strip()) and "\n" not in str(error)
        FUZZ_CASES.append((surface, case, one_line, 2))
        assert one_line, f"{surface} case {case}: {str(error)!r} is not one line"
        return
    except Exception as error:  # noqa: BLE001 - the finding this test exists for
        FUZZ_CASES.append((surface, case, False, None))
        pytest.fail(f"{surface} case {case}: {type(error).__name__}: {error}")
    FUZZ_CASES.append((surface, case, True, 0))


def random_value(rng):
    return rng.choice([float("nan"), float("inf"), -1, 0, 1, 2.5, 10**30, "x", None, [], True])


GOOD_VALUES = {"epochs": 2, "batch_size": 8, "max_length": 32, "learning_rate": 1e-4,
               "dropout": 0.2, "seed": 3, "loss_weights": {"topic": 2.0}, "tasks": "topic,ner",
               "scenario": "frozen_lower", "sampling": "temperature", "temperature": 2.0,
               "output_dir": None, "verbose": 0, "lora_rank": 4, "layer_decay": 0.8}  # fmt: skip


def test_python_api(tiny_preset, tiny_run, tmp_path):
    rng = random.Random(3)
    encoder = SentenceEncoder.from_preset(tiny_preset, max_length=16)
    predictor = Predictor.from_path(tiny_run / "model.keras", max_length=16)
    fields = list(GOOD_VALUES)
    for case in range(30):
        texts = [random_text(rng) for _ in range(rng.randrange(0, 5))]
        if rng.random() < 0.2:
            texts.append(random_value(rng))
        api_call("SentenceEncoder.encode", case, lambda t=texts: encoder.encode(t))
        api_call("Predictor.predict", case, lambda t=texts: predictor.predict(t))
        options = {}
        for field in rng.sample(fields, rng.randrange(1, 3)):
            options[field] = rng.choice([random_value(rng), GOOD_VALUES[field]])
        api_call("RunConfig", case, lambda o=options: RunConfig(**o))
        path = tmp_path / f"texts{case}{rng.choice(['.txt', '.csv', '.jsonl', '.bin'])}"
        text_file(path, rng)
        api_call("read_texts", case, lambda p=path: read_texts(p))
    assert_accepted({"SentenceEncoder.encode": 12, "Predictor.predict": 12, "RunConfig": 8,
                     "read_texts": 5})  # fmt: skip


def test_invalid_unicode_is_dropped_the_same_way_everywhere(tiny_preset):
    encoder = SentenceEncoder.from_preset(tiny_preset, max_length=16)
    np.testing.assert_allclose(encoder.encode(["the fo\udcffx"]), encoder.encode(["the fox"]))


COLUMNS = ["text", "label", "labels", "tokens", "tags", "sentence1", "sentence2", "score",
           "anchor", "positive", "negative", "other"]  # fmt: skip


LAYOUTS = [("text", "label"), ("text", "labels"), ("tokens", "tags"), ("anchor", "positive"),
           ("sentence1", "sentence2", "score"), ("sentence1", "sentence2", "label")]  # fmt: skip


def random_cell(rng):
    return rng.choice(["a", "b", "a", "b", "x y", "", "3", "0.5", "nan", "1e400", "a|b", '"',
                       "[1, 2]", "\t", random_text(rng)])  # fmt: skip


def random_data_file(folder, rng, case):
    """A file a user might give: a random header of known and unknown columns, random
    rows of cells, sometimes random bytes, in one of the formats or another extension."""
    if rng.random() < 0.5:  # a kind's own layout, so that some files are accepted
        columns = list(rng.choice(LAYOUTS))
    else:
        columns = rng.sample(COLUMNS, rng.randrange(0, 4))
    rows = [[random_cell(rng) for _ in columns] for _ in range(rng.randrange(0, 12))]
    suffix = rng.choice([".csv", ".tsv", ".jsonl", ".conll", ".txt"])
    path = folder / f"data{case}{suffix}"
    if rng.random() < 0.15:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(200))))
        return path
    if suffix == ".jsonl":
        lines = [json.dumps(dict(zip(columns, row, strict=True))) for row in rows]
        content = "\n".join(rng.choice([line, line[:-1], "{}"]) for line in lines)
    elif suffix == ".conll":
        content = "\n".join(" ".join(row) for row in rows)
    else:
        sep = "\t" if suffix == ".tsv" else ","
        content = "\n".join(sep.join(r) for r in [columns, *rows])
    path.write_bytes(content.encode("utf-8", "surrogateescape"))  # undecodable bytes stay
    return path


def test_own_data_files(tmp_path):
    """Random files given as a user's task: a `Task` whose examples read back, or a
    `UserError`; never another exception."""
    from mtl_keras.tasks import from_files

    rng = random.Random(5)
    for case in range(200):
        path = random_data_file(tmp_path, rng, case)

        def read(p=path):
            task = from_files("mine", p)
            for split in ("train", "validation", "test"):
                list(task.examples(split).as_numpy_iterator())

        api_call("tasks.from_files", case, read)
    assert_accepted({"tasks.from_files": 5})
