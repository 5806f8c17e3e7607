import json
import shlex
import subprocess
import sys

import pytest

from experiments import run
from experiments.cli import run_main
from mtl_keras.data.pipeline import tokenized_stream as TOKENIZED_STREAM
from tests.conftest import tiny_run_argv


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--scenario", "nope"], "unknown scenario 'nope'; choose from: full, frozen_all,"),
        (["--tasks", "topic,pos"], "unknown task 'pos'; choose from: topic, sentiment, ner"),
        (["--scenario", "frozen_head_b", "--tasks", "topic"], "needs at least 2 tasks"),
        (["--epochs", "0"], "--epochs must be in [1, 10000], got 0"),
        (["--loss-weights", "topic=heavy"], "is not task=number"),
        (["--loss-weights", "ner=2"], "names 'ner', not one of the tasks: topic, sentiment"),
        (["--preset", "/no/such/dir"], "not a local keras-hub preset"),
        (["--epochs", "3", "--max-steps", "2"], "--max-steps 2 is fewer than the 3 epochs"),
        (["--max-steps", "0"], "--max-steps must be in [1, inf), got 0"),
    ],
)
def test_user_errors_are_one_line_exit_2(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        run_main(run.main, [*argv, "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_mirrored_on_two_logical_cpus_end_to_end(tiny_preset, tiny_data_dir, tmp_path):
    out = tmp_path / "mirrored"
    mirrored = "--scenario full --epochs 2 --distribution mirrored --logical-cpus 2".split()
    argv = tiny_run_argv(tiny_preset, tiny_data_dir, out, *mirrored, "--verbose", "auto")
    cmd = [sys.executable, "-m", "experiments.run", *argv]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["optimizer_iterations"] > 0
    assert (out / "model.keras").is_file()
    # Output to a pipe, not a terminal: one progress line per epoch, not one per step.
    steps = metrics["optimizer_iterations"] // 2
    assert steps > 1 and result.stdout.count("/step") == 2, result.stdout[-3000:]


def test_max_steps_ends_the_run_and_its_schedule_after_that_many_steps(
    tiny_preset, tiny_data_dir, tmp_path, capsys, monkeypatch
):
    """Hugging Face's `max_steps`: 5 steps over 2 epochs run 2 + 2 (each epoch N // epochs,
    at most one pass over the data). The training sets are tokenized in the stream here,
    as a big file's are."""
    from mtl_keras.data import pipeline

    monkeypatch.setattr(pipeline, "STREAM_ABOVE", 0)
    streamed = []
    monkeypatch.setattr(pipeline, "tokenized_stream",
                        lambda *a: streamed.append(a[0].name) or TOKENIZED_STREAM(*a))  # fmt: skip
    out = tmp_path / "capped"
    run.main(tiny_run_argv(tiny_preset, tiny_data_dir, out, "--epochs", "2", "--max-steps", "5",
                           "--no-save-model", "--warmup-ratio", "0"))  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["optimizer_iterations"] == 4
    assert metrics["config"]["max_steps"] == 5
    assert "2 steps of" in capsys.readouterr().out
    assert streamed == ["topic", "sentiment"]
    # The schedule spans epochs x the steps an epoch runs (`attach_optimizer(data.steps)`).
    config = run.parse_config(["--epochs", "2", "--max-steps", "5"])
    assert [config.epoch_steps(n) for n in (100, 2, 1)] == [2, 2, 1]


def test_a_run_without_its_model_lists_only_the_files_it_wrote(
    tiny_preset, tiny_data_dir, tmp_path, capsys
):
    out = tmp_path / "study_like"
    run.main(tiny_run_argv(tiny_preset, tiny_data_dir, out, "--epochs", "1", "--no-save-model"))
    assert not (out / "model.keras").exists() and (out / "metrics.json").is_file()
    listed = capsys.readouterr().out.split(f"results in {out}/ (")[1].split(")")[0].split(", ")
    assert listed and "model.keras" not in listed
    assert all((out / name).exists() for name in listed)


def test_every_config_field_is_one_option_with_the_same_default():
    import dataclasses

    from mtl_keras import RunConfig

    fields = {field.name for field in dataclasses.fields(RunConfig)}
    own = {"task", "task_kind", "task_columns"}  # your own tasks: read into `tasks`
    assert set(vars(run.build_parser().parse_args([]))) == fields | own
    assert run.parse_config([]) == RunConfig()
    given = run.parse_config("--no-sts --no-cache --loss-weights topic=2 --train-examples "
                             "sentiment=5 --patience 2 --frozen-layers 1 --tasks topic,sentiment "
                             "--verbose 2".split())  # fmt: skip
    assert (given.measure_sts, given.cache_embeddings, given.save_model) == (False, False, True)
    assert given.loss_weights == {"topic": 2.0} and given.train_examples == {"sentiment": 5}
    assert (given.patience, given.frozen_layers, given.verbose) == (2, 1, 2)
    assert given.tasks == ("topic", "sentiment")


def test_own_tasks_train_alone_unless_tasks_names_built_in_ones(tmp_path):
    (tmp_path / "m.csv").write_text("text,label\nhi,a\nho,b\n")
    alone = run.parse_config(["--task", f"mine={tmp_path}/m.csv"])
    assert alone.task_names == ["mine"] and alone.tasks[0].files == {"train": f"{tmp_path}/m.csv"}
    beside = run.parse_config(["--tasks", "topic", "--task", f"mine={tmp_path}/m.csv"])
    assert beside.task_names == ["topic", "mine"]
    # Columns that say `sentence`; the forced kind reads them as multi-label instead.
    (tmp_path / "both.csv").write_text("body,label,labels\nhi,a,a|b\nho,b,b\n")
    mapped = run.parse_config(["--task", f"mine={tmp_path}/both.csv", "--task-columns",
                               "mine=text:body", "--task-kind", "mine=multi_label"])  # fmt: skip
    assert mapped.tasks[0].columns == {"text": "body"}
    assert mapped.tasks[0].kind == "multi_label" and mapped.tasks[0].labels == ("a", "b")
    detected = run.parse_config(["--task", f"mine={tmp_path}/both.csv", "--task-columns",
                                 "mine=text:body"])  # fmt: skip
    assert detected.tasks[0].kind == "sentence"


def test_verbosity_follows_the_terminal(monkeypatch):
    from mtl_keras import RunConfig

    class Stream:
        def __init__(self, tty):
            self.isatty = lambda: tty

    for tty, expected in ((True, 1), (False, 2)):
        monkeypatch.setattr(sys, "stdout", Stream(tty))
        assert RunConfig().fit_verbose == expected
    assert RunConfig(verbose=1).fit_verbose == 1 and RunConfig(verbose=0).fit_verbose == 0


def test_make_train_full_is_a_valid_full_data_run_then_its_export(tmp_path):
    from pathlib import Path

    from experiments import export

    root = Path(__file__).resolve().parent.parent
    dry = subprocess.run(
        ["make", "-n", "train-full", "PY=python", f"FULL_DIR={tmp_path}/full", "STAMP="],
        cwd=root, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    lines = dry.stdout.replace("\\\n", " ").splitlines()  # join continued lines
    commands = [shlex.split(line) for line in lines if " -m experiments." in line]
    assert [c[2] for c in commands] == ["experiments.run", "experiments.export"]
    config = run.parse_config(commands[0][3:])  # checked as a run would check it
    assert config.tasks == ("topic", "sentiment", "ner", "similarity")  # the pairs keep STS-B
    assert config.max_train_examples is None
    assert config.max_eval_examples is None  # the full test splits
    exported = export.build_parser().parse_args(commands[1][3:])
    assert exported.model == f"{config.output_dir}/model.keras"
    assert exported.max_length == config.max_length
