"""Data parallelism: the cluster variables, the per-process shards, the launcher's watch,
the training stream's fixed order, and (in subprocesses on JAX) two processes on
localhost that train, match one process, survive a kill and export for TF Serving."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from mtl_keras import RunConfig
from mtl_keras.data.orders import reshuffled_passes, task_draws
from mtl_keras.distributed import cluster as distributed
from mtl_keras.distributed.launch import core_sets, supervise
from mtl_keras.errors import InputError
from tests.conftest import tiny_run_argv, wait_for_checkpoint

GOOD = {distributed.ADDRESSES: "localhost:1234", distributed.PROCESSES: "2",
        distributed.PROCESS_ID: "1"}  # fmt: skip


def test_cluster_comes_from_keras_variables_and_round_trips():
    cluster = distributed.cluster_from_env(GOOD)
    assert cluster == distributed.Cluster(1, 2, "localhost:1234") and not cluster.is_chief
    assert distributed.cluster_from_env(cluster.env()) == cluster
    many = {**GOOD, distributed.ADDRESSES: "hostA:9000,hostB:9000"}
    assert distributed.cluster_from_env(many).coordinator == "hostA:9000"  # process 0's


@pytest.mark.parametrize(
    "change, words",
    [
        ({distributed.PROCESS_ID: ""}, "KERAS_DISTRIBUTION_PROCESS_ID set"),
        ({distributed.PROCESS_ID: "2"}, "must be in 0..1"),
        ({distributed.PROCESSES: "two"}, "whole numbers"),
        ({distributed.ADDRESSES: "a:1,b:2,c:3"}, "3 addresses for 2 processes"),
        ({distributed.ADDRESSES: "localhost"}, "host:port"),
    ],
)
def test_bad_cluster_variables_are_one_line_errors(change, words):
    with pytest.raises(InputError, match=words) as error:
        distributed.cluster_from_env({**GOOD, **change})
    assert "\n" not in str(error.value)


def test_data_parallel_needs_jax_and_one_output_folder():
    with pytest.raises(InputError, match="KERAS_BACKEND=jax"):
        distributed.start(environ=GOOD)  # this suite runs on TensorFlow
    with pytest.raises(InputError, match="needs --output-dir"):
        RunConfig(distribution="data_parallel")


def test_each_process_gets_its_equal_share_of_every_batch():
    batches = tf.data.Dataset.range(12).batch(4).map(lambda x: (x, x * 10))
    shares = [
        [(a.tolist(), b.tolist()) for a, b in distributed.shard(batches, cluster).as_numpy_iterator()]
        for cluster in (distributed.Cluster(0, 2), distributed.Cluster(1, 2))
    ]  # fmt: skip
    assert shares[0][0] == ([0, 1], [0, 10]) and shares[1][0] == ([2, 3], [20, 30])
    rows = sorted(r for share in shares for batch, _ in share for r in batch)
    assert rows == list(range(12))  # every row once
    assert distributed.shard(batches, None) is batches


def test_training_order_is_the_same_for_every_iterator_and_each_pass_is_a_permutation():
    examples = tf.data.Dataset.range(10)
    stream = reshuffled_passes(examples, 10, seed=3)
    first, second = (list(stream.take(30).as_numpy_iterator()) for _ in range(2))
    assert first == second  # whatever iterated the stream before
    passes = [first[i : i + 10] for i in (0, 10, 20)]
    assert all(sorted(p) == list(range(10)) for p in passes)
    assert passes[0] != passes[1] != passes[2]  # a new order each pass
    assert first != list(reshuffled_passes(examples, 10, seed=4).take(30).as_numpy_iterator())
    draws = task_draws(np.array([0.7, 0.2, 0.1]), seed=0)
    seen = np.array(list(draws.take(20_000).as_numpy_iterator()))
    assert (seen == np.array(list(draws.take(20_000).as_numpy_iterator()))).all()
    np.testing.assert_allclose(np.bincount(seen) / len(seen), [0.7, 0.2, 0.1], atol=0.015)


def test_core_sets_split_the_machine_evenly():
    cores = sorted(os.sched_getaffinity(0))
    sets = core_sets(1)
    assert sets == [cores]
    with pytest.raises(InputError, match="cores"):
        core_sets(len(cores) + 1, cores=1)


def test_launcher_stops_the_others_when_one_process_fails(capsys):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.time()
    try:
        assert supervise([sleeper, failing], poll=0.05) == 3
        assert sleeper.wait(timeout=10) == -signal.SIGTERM and time.time() - started < 10
    finally:
        stop(sleeper, failing)
    assert "process 1 exited with code 3" in capsys.readouterr().err


def test_launcher_gives_each_process_its_port_and_cores(tmp_path, monkeypatch):
    """`--port` is process 0's coordinator port in every process's variables, and
    `--cores-per-process` the number of cores each is pinned to (not the even split)."""
    from experiments import launch as launch_cli
    from mtl_keras.distributed.launch import free_port

    pid, addresses = distributed.PROCESS_ID, distributed.ADDRESSES
    report = (
        f"import json, os, sys; json.dump({{'id': os.environ[{pid!r}], "
        f"'addresses': os.environ[{addresses!r}], 'cores': sorted(os.sched_getaffinity(0)), "
        "'backend': os.environ['KERAS_BACKEND']}, "
        f"open(sys.argv[1] + '/' + os.environ[{pid!r}] + '.json', 'w'))"
    )
    monkeypatch.setattr(launch_cli, "run_command",
                        lambda options: [sys.executable, "-c", report, str(tmp_path)])  # fmt: skip
    port, cores = free_port(), sorted(os.sched_getaffinity(0))
    launch_cli.main(["--processes", "1", "--port", str(port), "--cores-per-process", "1"])
    seen = json.loads((tmp_path / "0.json").read_text())
    assert seen["addresses"] == f"localhost:{port}" and seen["backend"] == "jax"
    assert seen["cores"] == cores[:1] and len(cores) > 1  # the even split would be every core
    launch_cli.main(["--processes", str(len(cores))])  # default: a free port, one core each
    seen = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(len(cores))]
    assert [s["cores"] for s in seen] == [[c] for c in cores]
    assert len({s["addresses"] for s in seen}) == 1 and seen[0]["addresses"] != f"localhost:{port}"
    with pytest.raises(InputError, match=f"1 processes x {len(cores) + 1} cores need"):
        launch_cli.main(["--processes", "1", "--cores-per-process", str(len(cores) + 1)])


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused(tmp_path, monkeypatch):
    from mtl_keras.training.setup import start_distribution

    monkeypatch.setattr(distributed, "start", lambda timeout: distributed.Cluster(0, 2, "h:1"))
    config = RunConfig(distribution="data_parallel", batch_size=3, output_dir=str(tmp_path))
    with pytest.raises(InputError, match="--batch-size 3 must split evenly over the 2 processes"):
        start_distribution(config)
    cluster, _ = start_distribution(dataclasses.replace(config, batch_size=4))
    assert cluster.num_processes == 2


def jax_run(argv, processes=None, timeout=600, **popen):
    """`experiments.run` on JAX in a subprocess: one process, or `processes` through
    `experiments.launch`."""
    env = popen.pop("env", {**os.environ, "KERAS_BACKEND": "jax"})
    if processes:
        command = ["-m", "experiments.launch", "--processes", str(processes), "--", *argv]
    else:
        command = ["-m", "experiments.run", *argv]
    return subprocess.Popen([sys.executable, *command], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **popen)  # fmt: skip


def final_weights(folder):
    from mtl_keras.saving import load_model

    return load_model(folder / "model.keras", compile=False).get_weights()


EPOCHS = 8  # epochs after the first take well under a second: a window for the kill


def process_pids(launcher, timeout=60):
    """{process id in the cluster: pid} of the processes `launcher` started, read from each
    child's environment (pgrep lists children in no promised order)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        listed = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                text=True, timeout=30)  # fmt: skip
        found = {}
        for pid in map(int, listed.stdout.split()):
            try:
                environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            key = f"{distributed.PROCESS_ID}=".encode()
            ids = [int(e[len(key) :]) for e in environ if e.startswith(key)]
            found.update({ids[0]: pid} if ids else {})
        if len(found) == 2:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the launcher's two processes were not found: {found}")


def stop(*processes):
    """Kill whatever is still running, with the processes it started (`jax_run` gives each
    its own process group): a failed assert must not leave JAX processes behind."""
    for process in processes:
        if process is None or process.poll() is not None:
            continue
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the launcher and its children
        except ProcessLookupError:  # not a group leader: the process alone
            process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def two_runs(tiny_preset, tiny_data_dir, tmp_path_factory):
    """The same tiny run on one JAX process, and on two processes killed mid-run and
    restarted: (one process's folder, two processes' folder, the kill's output)."""
    root = tmp_path_factory.mktemp("data_parallel")
    options = ["--tasks", "topic,sentiment", "--epochs", str(EPOCHS), "--cluster-timeout", "120"]
    single = launcher = resumed = None
    try:
        single = jax_run(tiny_run_argv(tiny_preset, tiny_data_dir, root / "one", *options))
        parallel = tiny_run_argv(tiny_preset, tiny_data_dir, root / "two", *options)
        launcher = jax_run(parallel, processes=2)
        progress = root / "two" / "checkpoint" / "progress.json"
        wait_for_checkpoint(progress, launcher, epoch=1, timeout=400)
        os.kill(process_pids(launcher)[1], signal.SIGKILL)  # process 1, by its cluster id
        killed_output, _ = launcher.communicate(timeout=120)
        assert launcher.returncode == 128 + signal.SIGKILL, killed_output
        assert not (root / "two" / "metrics.json").exists()
        resumed = jax_run(parallel, processes=2)
        resumed_output, _ = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, resumed_output
        single_output, _ = single.communicate(timeout=600)
        assert single.returncode == 0, single_output
    finally:
        stop(single, launcher, resumed)
    return root / "one", root / "two", killed_output, resumed_output


def test_two_processes_killed_and_resumed_train_what_one_process_trains(two_runs):
    one, two, killed_output, resumed_output = two_runs
    error_lines = [line for line in killed_output.splitlines() if line.startswith("error:")]
    assert error_lines == [
        "error: process 1 was killed by signal 9; the others were stopped. Rerun the same "
        "command to resume from the last checkpoint."
    ]
    assert "resuming from the checkpoint after epoch" in resumed_output
    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["config"]["distribution"] == "data_parallel"
    first, second = metrics["weight_checksums"]
    assert first == second  # both processes hold the same weights
    history = [line.split(",")[0] for line in (two / "history.csv").read_text().splitlines()]
    assert history[1:] == [str(e) for e in range(EPOCHS)]  # every epoch once
    # The same global batches on one process: the same model, to float rounding.
    for a, b in zip(final_weights(one), final_weights(two), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)
    single = json.loads((one / "metrics.json").read_text())
    assert single["test"]["topic"]["xent"] == pytest.approx(metrics["test"]["topic"]["xent"], 1e-4)


def test_a_model_trained_on_two_jax_processes_exports_for_tf_serving(two_runs, tmp_path):
    from experiments import export
    from tests.export_test import keras_reference

    two = two_runs[1]
    out = tmp_path / "serving" / "1"
    export.main(["--model", str(two / "model.keras"), "--output", str(out), "--max-length", "16"])
    sentences = ["the team won the match !", "stocks fell"]
    served = tf.saved_model.load(str(out)).signatures["serving_default"](
        text=tf.constant(sentences)
    )
    reference = keras_reference(two, sentences)  # the .keras file, reloaded on TensorFlow
    np.testing.assert_allclose(
        served["topic_probs"].numpy(), tf.nn.softmax(reference["topic"]).numpy(), atol=1e-5
    )
    embedding = reference["embedding"] / np.linalg.norm(reference["embedding"], axis=1)[:, None]
    np.testing.assert_allclose(served["embedding"].numpy(), embedding, atol=1e-5)


@pytest.mark.parametrize("process_id", [0, 1])  # waiting for the others; for process 0
def test_a_cluster_that_does_not_form_is_one_line_not_a_hang(tiny_preset, tiny_data_dir, tmp_path,
                                                             process_id):  # fmt: skip
    from mtl_keras.distributed.launch import free_port

    cluster = distributed.Cluster(process_id, 2, f"localhost:{free_port()}")
    argv = tiny_run_argv(tiny_preset, tiny_data_dir, tmp_path / "run", "--distribution",
                         "data_parallel", "--cluster-timeout", "5")  # fmt: skip
    started = time.time()
    run = jax_run(argv, env={**os.environ, "KERAS_BACKEND": "jax", **cluster.env()})
    try:
        output, _ = run.communicate(timeout=120)
    finally:
        stop(run)
    assert run.returncode == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did not form within 5s" in errors[0], output
    assert time.time() - started < 90


def test_a_keras_file_saved_on_tensorflow_reloads_on_jax_with_the_same_outputs(tiny_run, tmp_path):
    from mtl_keras.predict import Predictor

    texts = ["the team won the match !", "stocks fell ."]
    here = Predictor.from_path(tiny_run / "model.keras").predict(texts, embeddings=True)
    script = (
        "import json, sys; from mtl_keras.predict import Predictor; "
        f"out = Predictor.from_path({str(tiny_run / 'model.keras')!r}).predict({texts!r}, "
        "embeddings=True); print(json.dumps(out))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "jax"}, check=True,
                          timeout=300)  # fmt: skip
    there = json.loads(done.stdout.strip().splitlines()[-1])
    for a, b in zip(here, there, strict=True):
        assert a["topic"]["label"] == b["topic"]["label"] and a["ner"] == b["ner"]
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-5)
        np.testing.assert_allclose(list(a["sentiment"]["probabilities"].values()),
                                   list(b["sentiment"]["probabilities"].values()), atol=1e-5)  # fmt: skip
