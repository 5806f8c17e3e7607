import subprocess

import pytest

from mtl_keras.provenance import code_commit


def test_code_commit_names_this_checkout():
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if git.returncode:
        pytest.skip("not a git checkout")
    commit = code_commit()
    assert commit is not None and commit.removesuffix("+changes") == git.stdout.strip()
