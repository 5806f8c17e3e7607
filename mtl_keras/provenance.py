"""Which code and which CPU made a result: the git commit and the CPU that a run's
metrics.json, the study and the benchmarks record."""

import functools
import hashlib
import re
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


def cpu_model():
    """The CPU's model name and its vector instruction sets (they decide TF's fast paths);
    empty where /proc/cpuinfo is not (macOS, Windows)."""
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                info.setdefault("cpu_model", value.strip())
            if key.strip() == "flags":
                flags = value.split()
                info.setdefault("cpu_vector_flags", sorted(
                    f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))
                ))  # fmt: skip
    except OSError:
        pass
    return info


def bf16_capable():
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX), or None when its
    flags cannot be read (not Linux)."""
    flags = cpu_model().get("cpu_vector_flags")
    if flags is None:
        return None
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def cpu_folder(cpu_model_name, vector_flags=()):
    """A name for one CPU: its model name and a digest of its vector instruction sets,
    since one name ('AMD EPYC') covers generations that measure differently. The
    benchmarks' results folder of that CPU."""
    words = re.sub(r"\((r|tm)\)", " ", (cpu_model_name or "unknown cpu").lower())
    name = re.sub(r"[^a-z0-9]+", "-", words).strip("-") or "unknown-cpu"
    digest = hashlib.sha1(" ".join(sorted(vector_flags)).encode()).hexdigest()[:6]
    return f"{name}-{digest}"


def machine_cpu():
    """This machine's CPU as `cpu_folder` names it (`amd-epyc-a35562`), or None where the
    CPU cannot be read: seconds per epoch compare only between runs on one CPU."""
    info = cpu_model()
    if "cpu_model" not in info:
        return None
    return cpu_folder(info["cpu_model"], info.get("cpu_vector_flags", ()))


FRAMEWORKS = ("keras", "keras-hub", "tensorflow", "tensorflow-text", "jax", "numpy")


def framework_versions():
    """{package: version} of Python and the frameworks installed here (a model card names
    the versions that trained and exported a model); a package not installed is left out."""
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in FRAMEWORKS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
