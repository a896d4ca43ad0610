"""The project installs as a real (non-editable) wheel whose five stages import as
`slim.<stage>` and which installs no top-level `model`, `train` or `eval` package."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "pipeline", "model", "train", "eval")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # --no-build-isolation: the venv has setuptools+wheel (make install) and CI may
    # not want a second download; build in a copy-free temp build dir.
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        capture_output=True, text=True, env={"PIP_NO_INPUT": "1", "TMPDIR": str(build),
                                             "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = out.glob("slim_skeleton-*.whl")
    return whl


def test_wheel_contains_only_the_slim_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"slim"}
    for stage in STAGES:
        assert f"slim/{stage}/__init__.py" in names
    assert "slim/ingest/resources/NTU_RGBD_samples_with_missing_skeletons.txt" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    for script in ("slim-ingest", "slim-train", "slim-eval"):
        assert script in text


def test_installed_wheel_imports_every_stage_from_the_install(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                           "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        # drop the editable install's finders so only the wheel can answer
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "sys.path_hooks = [h for h in sys.path_hooks if 'editable' not in repr(h).lower()]\n"
        "sys.path_importer_cache.clear()\n"
        "mods = [importlib.import_module('slim.' + s) for s in %r]\n"
        "print('\\n'.join(m.__file__ for m in mods))\n"
        "from slim.ingest.cli import main\n"
        "for bad in ('model', 'train', 'eval', 'ingest', 'pipeline'):\n"
        "    try:\n"
        "        importlib.import_module(bad)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    raise SystemExit('top-level package installed: ' + bad)\n"
    ) % (STAGES,)
    # -I: isolated mode, so the working directory (the repo) is not on sys.path
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = proc.stdout.split()
    assert len(files) == len(STAGES)
    assert all(f.startswith(str(target)) for f in files), files


def test_console_scripts_explain_their_subcommands():
    bin_dir = Path(sys.executable).parent
    for script, subs in {"slim-ingest": ("synth", "verify", "info", "show", "ntu120"),
                         "slim-train": ("pretrain", "export"),
                         "slim-eval": ("retrieval", "linear", "semi", "finetune", "transfer",
                                       "features", "flops", "report")}.items():
        proc = subprocess.run([str(bin_dir / script), "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        for sub in subs:
            assert sub in proc.stdout, (script, sub)
