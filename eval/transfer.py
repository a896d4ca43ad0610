"""Transfer: a source run's encoder, linear evaluation on another dataset (NTU -> PKU-MMD
II). Features only mean something when both datasets share the skeleton layout (joint
order and count), so that is checked first, with an error that says what differs."""
from __future__ import annotations

from pathlib import Path

import h5py

from slim.ingest.manifest import read_manifest
from slim.ingest.topology import canonical_name

from .linear import LinearConfig, run_linear
from .target import EvalTarget, TargetError, read_run_json


def target_joints(data_dir: Path) -> int:
    """Joint count V of a dataset's samples.h5 (joints [R, V, C])."""
    path = Path(data_dir) / "samples.h5"
    with h5py.File(path, "r") as f:
        return int(f["joints"].shape[1])


def check_layout(target: EvalTarget, source_data: Path | None) -> dict:
    """Raise TargetError when the source dataset's layout (manifest meta `slim.layout`) or
    the encoder's joint count differ from the target dataset's. Returns what was compared."""
    tgt_layout = target.meta.get("layout")
    src_layout = None
    if source_data is not None and (Path(source_data) / "manifest.parquet").is_file():
        _t, src_meta = read_manifest(source_data)
        src_layout = src_meta.get("layout")
        if canonical_name(str(src_layout)) != canonical_name(str(tgt_layout)):
            raise TargetError(
                f"skeleton layouts differ: source {source_data} is {src_layout!r}, target "
                f"{target.data_dir} is {tgt_layout!r}; features of one layout mean nothing on the other",
                "transfer between datasets of the same layout (NTU and PKU-MMD II share Kinect v2 25 joints), "
                f"or re-ingest the target with the source's layout (slim-ingest nwucla --layout {src_layout})")
    v = target_joints(target.data_dir)
    if v != target.encoder.cfg.num_joints:
        raise TargetError(
            f"the encoder expects {target.encoder.cfg.num_joints} joints, {target.data_dir}/samples.h5 has {v}",
            "use a target dataset with the source's skeleton (Kinect v2, 25 joints)")
    return {"source_layout": src_layout, "target_layout": tgt_layout, "joints": v}


def run_transfer(target: EvalTarget, cfg: LinearConfig) -> tuple[dict, Path]:
    """Linear evaluation of the source run's encoder on target.data_dir; writes
    `<source run>/eval/transfer_<target dataset>[_random].json`."""
    if target.run_dir is None:
        raise TargetError("transfer needs the source run (--source RUN)", "pass --source runs/<name>")
    info = read_run_json(target.run_dir)
    source_data = Path(info["data"]) if info.get("data") else None
    layout = check_layout(target, source_data)
    source_dataset = info.get("dataset") or ""
    return run_linear(target, cfg, protocol="transfer", variant=source_dataset,
                      file_variant=target.dataset,
                      extra={"source": {"run": str(target.run_dir), "dataset": source_dataset,
                                        "benchmark": info.get("benchmark")}, "layout": layout})
