"""`.keras` files: identical reload in a fresh process, optimizer state, bad files."""

import subprocess
import sys
import textwrap

import keras
import keras_hub
import numpy as np
import pytest

from mtl_keras.errors import InputError
from mtl_keras.saving import load_model
from tests.conftest import deterministic_tiny_model, tiny_inputs, tiny_run_argv


def test_fresh_process_reload_is_identical_and_keeps_training(tiny_run, tmp_path):
    model = load_model(tiny_run / "model.keras")
    expected = {k: np.asarray(v) for k, v in model(tiny_inputs(), training=False).items()}
    np.savez(tmp_path / "expected.npz", **expected)
    script = textwrap.dedent(f"""
        import numpy as np, keras, mtl_keras
        from tests.conftest import deterministic_tiny_model, tiny_inputs, tiny_run_argv
        model = keras.models.load_model({str(tiny_run / "model.keras")!r})
        expected = np.load({str(tmp_path / "expected.npz")!r})
        out = model(tiny_inputs(), training=False)
        print("maxdiff", max(float(np.abs(np.asarray(out[k]) - expected[k]).max()) for k in expected))
        start = int(model.optimizer.iterations.numpy())
        y = {{"topic": np.array([1, 2]), "sentiment": np.array([0, 1]),
              "ner": np.zeros((2, 5), "int32")}}
        model.fit(tiny_inputs(), y, epochs=1, verbose=0)
        print("iterations", start, int(model.optimizer.iterations.numpy()))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert float(lines["maxdiff"]) == 0.0
    start, end = map(int, lines["iterations"].split())
    assert start > 0 and end == start + 1  # the saved optimizer state came back


@pytest.mark.parametrize(
    "name, content",
    [
        ("missing.keras", None),
        ("truncated.keras", "half"),
        ("garbage.keras", b"not a zip"),
        ("model.h5", b"x"),
    ],
)
def test_bad_files_are_one_line_errors_naming_the_file(tiny_run, tmp_path, name, content):
    path = tmp_path / name
    if content == "half":
        data = (tiny_run / "model.keras").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_safe_mode_refuses_code_in_model_files(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Lambda(lambda x: x + 1)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(InputError, match="safe_mode"):
        load_model(tmp_path / "lambda.keras")


def test_optimizer_moments_survive_a_reload(tmp_path):
    from mtl_keras.artifacts import save_model
    from mtl_keras.model.multitask import compile_model
    from mtl_keras.training.optimizers import make_optimizer
    from mtl_keras.training.scenarios import SCENARIOS

    model = deterministic_tiny_model("topic,sentiment")
    optimizer = make_optimizer(SCENARIOS["llrd"], 1e-3, num_layers=2, total_steps=10,
                               schedule="linear", warmup_ratio=0.2)  # fmt: skip
    compile_model(model, optimizer)
    y = {"topic": np.array([1, 3]), "sentiment": np.array([0, 2])}
    model.fit(tiny_inputs(), y, epochs=3, batch_size=1, verbose=0)
    before = {v.path: v.numpy() for v in model.optimizer.variables}
    reloaded = load_model(save_model(model, tmp_path / "m.keras"))
    after = {v.path: v.numpy() for v in reloaded.optimizer.variables}
    assert after.keys() == before.keys()
    moments = [p for p in before if p.endswith(("momentum", "velocity"))]
    assert len(moments) == 2 * len(model.trainable_weights)
    assert sum(np.abs(before[p]).max() > 0 for p in moments) > len(moments) // 2
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value, err_msg=path)
    assert int(reloaded.optimizer.iterations.numpy()) == 6


def test_init_from_pairs_the_backbones_whatever_their_names(tiny_run):
    """A backbone made without a name is named by how many of its class the process made
    before; the saved one is copied into the new one all the same."""
    from mtl_keras.model.multitask import MultiTaskModel
    from mtl_keras.saving import copy_weights_from
    from mtl_keras.tasks import resolve_tasks
    from tests.conftest import make_tiny_backbone

    source = load_model(tiny_run / "model.keras", compile=False)
    backbone = make_tiny_backbone()
    backbone.name = f"{source.backbone.name}_made_elsewhere"
    model = MultiTaskModel(backbone, resolve_tasks("topic"))
    copied = copy_weights_from(model, tiny_run / "model.keras")
    assert model.backbone.name in copied and "topic" in copied
    assert model.backbone.name != source.backbone.name
    for a, b in zip(model.backbone.get_weights(), source.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_init_from_copies_the_saved_weights(tiny_run, tiny_preset, tiny_data_dir, tmp_path):
    # frozen_all trains nothing: what it saves is what it started from.
    from experiments import run

    argv = tiny_run_argv(tiny_preset, tiny_data_dir, tmp_path / "init", "--scenario",
                         "frozen_all", "--init-from", str(tiny_run / "model.keras"), "--seed", "5",
                         "--tasks", "topic,sentiment")  # fmt: skip
    run.main(argv)
    source = load_model(tiny_run / "model.keras", compile=False)
    started = load_model(tmp_path / "init" / "model.keras", compile=False)
    for part in ("backbone", "topic", "sentiment"):
        mine, theirs = (m.backbone if part == "backbone" else m.get_layer(part)
                        for m in (started, source))  # fmt: skip
        assert len(mine.weights) == len(theirs.weights) > 0
        for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=part)
    pretrained = keras_hub.models.BertBackbone.from_preset(str(tiny_preset)).get_weights()
    backbone = started.backbone.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(backbone, pretrained, strict=True))


def test_a_model_saved_before_the_package_layout_moved_still_loads():
    """`tests/fixtures/legacy_model.keras` was saved when every module sat flat in
    `mtl_keras/` (`make_legacy_model.py`): attention pooling, uncertainty weighting, a pair
    task, layer-wise learning rates. It loads with the outputs and optimizer state it had."""
    from tests.fixtures.make_legacy_model import HERE, legacy_inputs

    expected = np.load(HERE / "legacy_outputs.npz")
    model = load_model(HERE / "legacy_model.keras")
    outputs = model(legacy_inputs(), training=False)
    assert sorted(outputs) == ["ner", "similarity", "topic"]
    for name, value in outputs.items():
        np.testing.assert_allclose(np.asarray(value), expected[name], atol=1e-6, err_msg=name)
    state = {f"optimizer/{v.path}": v.numpy() for v in model.optimizer.variables}
    assert sorted(state) == sorted(k for k in expected if k.startswith("optimizer/"))
    for path, value in state.items():
        np.testing.assert_array_equal(value, expected[path], err_msg=path)
