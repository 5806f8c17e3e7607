"""The README's library example runs as written, from a folder outside the checkout."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import GUARD_DIR

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(marker):
    """The ```python block of the README that contains `marker`."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(block for block in blocks if marker in block)


def test_import_works_outside_the_checkout(tmp_path):
    # No checkout on the path: only an installed package (make setup installs it editable)
    # imports. The path keeps the suite's network guard, which holds no package.
    env = {**os.environ, "PYTHONPATH": GUARD_DIR}
    code = "import mtl_keras, experiments.run; print(mtl_keras.train.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "train", result.stderr[-2000:]


def test_train_example_runs_as_written(tiny_preset, tiny_data_dir, tmp_path):
    # The tiny preset and data stand in for the real ones through the documented variables.
    env = {**os.environ, "PYTHONPATH": GUARD_DIR}
    env |= {"MTL_KERAS_PRESET": str(tiny_preset), "MTL_KERAS_DATA_DIR": str(tiny_data_dir)}
    code = readme_block("train(")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "runs").glob("*/metrics.json"))
    assert len(runs) == 1 and (runs[0].parent / "model.keras").is_file()
    assert "label:" in result.stdout


def test_the_readme_stays_a_newcomers_page():
    """At most 150 lines, no paragraph over 6 lines, no commit hashes: findings, provenance
    and timings live in RESULTS.md, BENCHMARKS.md and docs/."""
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    paragraphs = [
        p for p in prose.split("\n\n") if p.strip() and not p.lstrip().startswith(("|", "#"))
    ]
    assert max(len(p.strip().splitlines()) for p in paragraphs) <= 6
    hashes = [
        w
        for w in re.findall(r"\b[0-9a-f]{7,40}\b", prose)
        if re.search(r"[a-f]", w) and re.search(r"\d", w)
    ]
    assert not hashes, hashes
