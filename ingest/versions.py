"""Version strings written into every output (HDF5 attributes, manifests, checkpoints,
result files) and the machine description used by benchmarks."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

#: Bumped whenever the bytes ingest writes for the same raw input change.
INGEST_VERSION = "2"   # 2: inf / overflow / |x| > 100 m read as NaN (frames dropped)


def package_version() -> str:
    try:
        return metadata.version("slim-skeleton")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def code_version() -> str:
    """`0.1.0+g<commit>` when run from a git checkout, else the package version."""
    commit = git_commit()
    return f"{package_version()}+g{commit}" if commit else package_version()


def machine_info() -> dict:
    """CPU model, cores, torch version and GPU (if any): the header of every benchmark."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        import torch
        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch"] = None
        info["gpu"] = None
    return info
