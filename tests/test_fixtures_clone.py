"""The suite needs nothing outside the checkout: a fresh clone of the committed HEAD, in a
temporary folder with no `shared/` (or anything else) beside it, runs the tests that read
the real data fixtures, importing the clone's own code."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "pipeline", "model", "train", "eval")
FIXTURE_TESTS = ("tests/test_ingest_reader.py", "tests/test_ingest_run.py")


def _git(*args, cwd=ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_fresh_clone_runs_the_fixture_tests(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    try:
        head = _git("rev-parse", "HEAD")
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout (e.g. an unpacked sdist)")
    clone = tmp_path / "box" / "slim-skeleton"
    _git("clone", "-q", "--no-checkout", str(ROOT), str(clone), cwd=tmp_path)
    _git("checkout", "-q", head, cwd=clone)
    assert sorted(p.name for p in clone.parent.iterdir()) == ["slim-skeleton"]
    assert not (clone.parent / "shared").exists()
    # Every fixture is committed, byte-exact (CRLF kept) and marked binary.
    for rel in ("tests/fixtures/SOURCES.md", "tests/fixtures/ntu/S001C001P001R001A001.skeleton",
                "tests/fixtures/pku/A10N08-L.txt"):
        assert (clone / rel).read_bytes() == (ROOT / rel).read_bytes(), rel
    assert b"\r\n" in (clone / "tests/fixtures/ntu/S001C001P001R001A001.skeleton").read_bytes()
    attr = _git("check-attr", "binary", "--", "tests/fixtures/ntu/S001C001P001R001A001.skeleton",
                cwd=clone)
    assert attr.endswith("binary: set"), attr
    # No machine path anywhere in the tracked files.
    hits = subprocess.run(["git", "grep", "-n", "-e", "/work/", "--", ".", ":!tests/test_fixtures_clone.py"],
                          cwd=clone, capture_output=True, text=True).stdout
    assert hits == "", hits
    # The clone's own `slim` package (the stage folders under their installed names).
    pkg = tmp_path / "pkg" / "slim"
    pkg.mkdir(parents=True)
    for stage in STAGES:
        (pkg / stage).symlink_to(clone / stage, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIM_")}
    env["PYTHONPATH"] = str(pkg.parent)
    env["OMP_NUM_THREADS"] = "1"
    where = subprocess.run([sys.executable, "-c", "import slim.ingest; print(slim.ingest.__file__)"],
                           cwd=clone, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(pkg)), where
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FIXTURE_TESTS],
                       cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout.splitlines()[-1]
