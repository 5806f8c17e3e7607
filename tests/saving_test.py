"""`.keras` files: identical reload in a fresh process, optimizer state, bad files."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from mtl_keras.errors import InputError
from mtl_keras.saving import load_model
from tests.conftest import tiny_inputs


def test_fresh_process_reload_is_identical_and_keeps_training(tiny_run, tmp_path):
    model = load_model(tiny_run / "model.keras")
    expected = {k: np.asarray(v) for k, v in model(tiny_inputs(), training=False).items()}
    np.savez(tmp_path / "expected.npz", **expected)
    script = textwrap.dedent(f"""
        import numpy as np, keras, mtl_keras
        from tests.conftest import tiny_inputs
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
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
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
