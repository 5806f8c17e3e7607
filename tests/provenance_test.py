import subprocess

import pytest

from mtl_keras import provenance
from mtl_keras.provenance import code_commit


def test_code_commit_names_this_checkout():
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=60
    )
    if git.returncode:
        pytest.skip("not a git checkout")
    commit = code_commit()
    assert commit is not None and commit.removesuffix("+changes") == git.stdout.strip()


def test_machine_cpu_names_the_model_and_its_vector_sets(monkeypatch):
    """Study runs record the CPU as the benchmarks' results folders name it, so two CPU
    generations sharing a model name stay apart, and a machine without /proc/cpuinfo
    records none rather than a guess."""
    amd = {"cpu_model": "AMD EPYC", "cpu_vector_flags": ["avx2", "avx512f"]}
    monkeypatch.setattr(provenance, "cpu_model", lambda: amd)
    name = provenance.machine_cpu()
    assert name.startswith("amd-epyc-") and name == provenance.cpu_folder(
        "AMD EPYC", ["avx512f", "avx2"]
    )
    assert name != provenance.cpu_folder("AMD EPYC", ["avx2"])
    monkeypatch.setattr(provenance, "cpu_model", lambda: {})
    assert provenance.machine_cpu() is None
