"""Which code made a result: the git commit a run's metrics.json, the study and the
benchmarks record."""

import functools
import subprocess
from pathlib import Path

# Reports, results and documentation change beside the runs that made them; not code.
NOT_CODE = ("results", "benchmarks/results", "docs", "**/*.md")


def code_commit():
    """The short commit of the mtl_keras checkout (`+changes` when tracked files other
    than results and documentation differ), or None outside a git checkout (a wheel)."""
    git = functools.partial(subprocess.run, cwd=Path(__file__).resolve().parent,
                            capture_output=True, text=True, check=True, timeout=10)  # fmt: skip
    exclude = [f":(top,glob,exclude){path}" for path in NOT_CODE]
    try:
        commit = git(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = git(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                     *exclude]).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if dirty else "")
