import subprocess
import sys

import numpy as np

from experiments import embed


def test_embed_prints_shapes_and_similarity(tiny_preset, capsys):
    out = embed.main(["--preset", str(tiny_preset), "--max-length", "16", "the fox", "a dog"])
    printed = capsys.readouterr().out
    assert out.shape == (2, 16)
    assert "shape=(16,)" in printed and "cosine similarity" in printed
    np.testing.assert_allclose(np.diag(out @ out.T), 1.0, rtol=1e-5)


def test_user_error_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.embed", "--preset", str(tmp_path / "missing"), "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
