"""What an evaluation runs on: an encoder (a run's exported teacher, a file, or a random
initialisation of a run's architecture), a data folder and a benchmark, with defaults
taken from the run so that a bare `slim-eval retrieval --k 1` does the expected thing."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from slim.ingest.work import file_sha256
from slim.ingest.manifest import read_manifest
from slim.model.encoder import Encoder
from slim.model.io import load_encoder


class TargetError(ValueError):
    """A user-facing problem with the inputs: `message` and a `hint` with the fix."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass
class EvalTarget:
    encoder: Encoder              # eval mode, CPU
    label: str                    # "trained" | "random:SEED"
    sha256: str                   # of the encoder file; for random: of (seed, config)
    encoder_path: Path | None
    run_dir: Path | None
    out_dir: Path                 # results go to out_dir/eval/
    data_dir: Path
    dataset: str
    benchmark: str
    num_classes: int
    meta: dict                    # manifest metadata
    run_state: dict | None = None  # {"status", "step", "total_steps"} of run.json, or None
    encoder_meta: dict | None = None  # what the encoder file says (export: run, step, dataset, benchmark)
    #: Frames of the test view: the global-view length the encoder was trained on
    #: (`trained_global_len`); a 32-frame-trained encoder evaluated on 64-frame views
    #: sees inputs twice as slow as in training.
    eval_len: int = 64

    def encoder_record(self) -> dict:
        """What the result file says about the encoder: label, sha256, file, run, config,
        and the run's status and step when it came from a run folder."""
        return {"label": self.label, "sha256": self.sha256,
                "path": str(self.encoder_path) if self.encoder_path else None,
                "run": str(self.run_dir) if self.run_dir else None,
                "run_status": self.run_state, "eval_len": self.eval_len,
                "config": asdict(self.encoder.cfg)}

    def unfinished_warning(self) -> str | None:
        """A sentence when the run is not finished (its encoder is partly trained), else None."""
        st = self.run_state
        if not st or st.get("status") == "finished" or self.label != "trained":
            return None
        return (f"{self.run_dir} is not finished (status {st.get('status')!r}, step {st.get('step')} of "
                f"{st.get('total_steps')}): evaluating a partly trained encoder; the result file records "
                "this. Finish the run by re-running its `slim-train pretrain` command.")



def read_run_json(run_dir: Path) -> dict:
    """run.json of a run folder (train's contract: data, dataset, benchmark, status...)."""
    p = Path(run_dir) / "run.json"
    if not p.is_file():
        raise TargetError(f"{run_dir}: not a run folder (no run.json)",
                          "pass a folder made by `slim-train pretrain`, or --encoder FILE --data DIR")
    return json.loads(p.read_text())


def latest_run_dir() -> Path:
    """The newest run under runs/ (train's `latest_run`)."""
    try:
        from slim.train.runs import latest_run
    except ImportError as e:  # pragma: no cover - train is part of the package
        raise TargetError(f"cannot look up the latest run ({e})", "pass --run RUN") from e
    run = latest_run()
    if run is None:
        raise TargetError("no run found under runs/",
                          "train one with `slim-train pretrain`, or pass --run RUN / --encoder FILE --data DIR")
    return Path(run)


def run_encoder_path(run_dir: Path) -> Path:
    """`<run>/encoder.pt`, exported first from the latest checkpoint when missing or older."""
    existing = Path(run_dir) / "encoder.pt"
    try:
        from slim.train.checkpoint import export_encoder
    except ImportError:  # a train stage without checkpoints: the exported file is all there is
        if existing.is_file():
            return existing
        raise TargetError(f"{run_dir}: no encoder.pt", f"export it with `slim-train export {run_dir}`") from None
    from slim.train.checkpoint import CheckpointError
    try:
        return Path(_export_once(export_encoder, Path(run_dir)))
    except (CheckpointError, FileNotFoundError) as e:
        # A run folder assembled by hand (or copied without checkpoints) still has its export.
        if existing.is_file():
            return existing
        raise TargetError(f"{run_dir}: no encoder.pt and no checkpoint to export it from ({e})",
                          "let the run write a checkpoint (re-run its `slim-train pretrain` command), "
                          "or pass --encoder FILE") from e


def _export_once(export, run_dir: Path):
    """`export(run_dir)` on rank 0 first under torchrun (the others wait, then find the
    file fresh and only read it): one process writes encoder.pt."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return export(run_dir)
    out, err = None, None
    if dist.get_rank() == 0:
        try:
            out = export(run_dir)
        except Exception as exc:  # noqa: BLE001 - re-raised after the barrier, on every rank
            err = exc
    dist.barrier()
    if err is not None:
        raise err
    return out if out is not None else export(run_dir)


def random_encoder(like: Encoder, seed: int) -> tuple[Encoder, str]:
    """A fresh encoder of `like`'s architecture initialised from `seed` (the baseline).
    Returns (encoder in eval mode, sha256 of seed + config)."""
    g = torch.Generator().manual_seed(seed)
    enc = Encoder(like.cfg, generator=g).eval()
    key = json.dumps({"random": seed, "config": asdict(like.cfg)}, sort_keys=True)
    return enc, hashlib.sha256(key.encode()).hexdigest()


def parse_encoder_option(value: str | None) -> tuple[str, int | None, Path | None]:
    """`--encoder` -> (kind, seed, path): None -> ("trained", None, None);
    "random" / "random:SEED" -> ("random", SEED, None); a file -> ("file", None, path)."""
    if value is None or value == "trained":
        return "trained", None, None
    if value == "random" or value.startswith("random:"):
        seed = value.partition(":")[2] or "0"
        if not seed.isdigit():
            raise TargetError(f"--encoder {value}: the seed must be a non-negative integer",
                              "write --encoder random:0")
        return "random", int(seed), None
    return "file", None, Path(value)


def check_encoder_layout(enc: Encoder, enc_meta: dict, data_dir: Path, meta: dict) -> None:
    """Raise TargetError when the data's skeleton layout (manifest `slim.layout`) does not
    fit the encoder: another joint count, or another layout name recorded with the encoder
    (encoder.pt meta `layout`, written since layouts exist)."""
    from slim.ingest.topology import canonical_name, get_layout

    try:
        layout = get_layout(str(meta.get("layout")))
    except KeyError as e:
        raise TargetError(f"{data_dir}: {e.args[0]}", "re-ingest the dataset with this version") from None
    enc_layout = enc_meta.get("layout")
    if layout.num_joints != enc.cfg.num_joints or (
            enc_layout and canonical_name(enc_layout) != layout.name):
        name = f"layout {enc_layout}, " if enc_layout else ""
        raise TargetError(
            f"the encoder ({name}{enc.cfg.num_joints} joints) does not fit {data_dir} "
            f"(layout {layout.name}, {layout.num_joints} joints)",
            f"evaluate on data ingested in the encoder's layout, e.g. `slim-ingest <dataset> "
            f"--layout {enc_layout or 'ntu25'}` (nwucla maps Kinect v1 onto ntu25)")


def trained_global_len(enc_meta: dict | None, run_dir: Path | None) -> int:
    """Frames of the global views the encoder was trained on: the encoder file's
    `global_len` (written by `slim-train export`), else the run's config.toml
    `pipeline.global_len`, else the paper's 64 (PipelineConfig's default). A random
    encoder of a run is evaluated at its run's length too, so both sides of a margin see
    the same inputs."""
    if enc_meta and enc_meta.get("global_len"):
        return int(enc_meta["global_len"])
    if run_dir is not None and (Path(run_dir) / "config.toml").is_file():
        from slim.train.config import from_toml_text
        try:
            return int(from_toml_text((Path(run_dir) / "config.toml").read_text()).pipeline.global_len)
        except Exception:  # noqa: BLE001 - a damaged config.toml: fall back, the run check reports it
            pass
    from slim.pipeline.config import PipelineConfig
    return int(PipelineConfig().global_len)


def resolve_target(run: str | Path | None = None, encoder: str | None = None,
                   data: str | Path | None = None, benchmark: str | None = None,
                   announce=None) -> EvalTarget:
    """Resolve the CLI/library inputs into an EvalTarget.

    run: a run folder (None: the latest under runs/ unless encoder is a file).
    encoder: None/"trained" (the run's encoder.pt), "random[:SEED]", or an encoder file.
    data/benchmark: default to the run's (run.json); required with a bare encoder file.
    announce: optional callable(str) told which run and data were picked by default.
    """
    kind, seed, enc_path = parse_encoder_option(encoder)
    run_dir = Path(run) if run is not None else None
    if run_dir is None and kind != "file":
        run_dir = latest_run_dir()
        if announce:
            announce(f"run: {run_dir} (latest under runs/; --run to choose)")
    info = read_run_json(run_dir) if run_dir is not None else {}
    if kind == "file":
        if not enc_path.is_file():
            raise TargetError(f"{enc_path}: no such encoder file",
                              "pass --encoder FILE (from `slim-train export`), random:SEED, or --run RUN")
        path = enc_path
    else:
        path = run_encoder_path(run_dir)
    try:
        enc, enc_meta = load_encoder(path)
    except Exception as e:  # noqa: BLE001 - torch.load of a damaged file raises many kinds
        hint = ("pass --encoder runs/<name>/encoder.pt (written by `slim-train export RUN`), or --run RUN"
                if kind == "file" else f"re-export the encoder with `slim-train export {run_dir}`")
        raise TargetError(f"{path}: cannot be read as an encoder file ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})", hint) from None
    if kind == "random":
        enc, sha = random_encoder(enc, seed)
        label, path_rec = f"random:{seed}", None
    else:
        sha, label, path_rec = file_sha256(path), "trained", path
    if data is None:
        if not info.get("data"):
            raise TargetError("no data folder: the encoder file says nothing about its dataset",
                              "pass --data DIR (a folder written by slim-ingest)")
        data = info["data"]
        if announce:
            announce(f"data: {data} (the run's dataset; --data to choose)")
    data_dir = Path(data)
    try:
        _table, meta = read_manifest(data_dir)
    except FileNotFoundError as e:
        inside = sorted(p for p in data_dir.glob("*/manifest.parquet")) if data_dir.is_dir() else []
        hint = (f"{data_dir} holds datasets: pass one of them, e.g. --data {inside[0].parent}" if inside
                else "pass --data DIR pointing at an ingested dataset (a folder with manifest.parquet)")
        raise TargetError(str(e), hint) from None
    except (OSError, ValueError) as e:   # pyarrow's ArrowInvalid is a ValueError
        raise TargetError(f"{data_dir / 'manifest.parquet'} cannot be read ({e})",
                          "re-run the ingest of this dataset (`slim-ingest verify DIR` checks it)") from e
    benchmarks = list(meta.get("benchmarks") or [])
    if benchmark is None:
        benchmark = info.get("benchmark") if info.get("benchmark") in benchmarks else None
        benchmark = benchmark or (benchmarks[0] if benchmarks else None)
    if benchmark not in benchmarks:
        raise TargetError(f"{data_dir}: benchmark {benchmark!r} is not one of {benchmarks}",
                          f"pass --benchmark {benchmarks[0] if benchmarks else 'xsub'}")
    check_encoder_layout(enc, enc_meta, data_dir, meta)
    out_dir = run_dir if run_dir is not None else path.parent
    return EvalTarget(encoder=enc, label=label, sha256=sha, encoder_path=path_rec,
                      run_dir=run_dir, out_dir=out_dir, data_dir=data_dir,
                      dataset=str(meta.get("dataset")), benchmark=benchmark,
                      num_classes=int(meta["num_classes"]), meta=meta,
                      run_state=({k: info.get(k) for k in ("status", "step", "total_steps")}
                                 if run_dir is not None else None),
                      encoder_meta={k: v for k, v in enc_meta.items() if k != "config"},
                      eval_len=trained_global_len(enc_meta, run_dir))
