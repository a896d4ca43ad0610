"""Synthetic raw data in the exact NTU RGB+D (or PKU-MMD II) file formats.

`generate(out_dir, SynthConfig(...))` writes files the real readers ingest unchanged
(ingested as dataset `synthetic` with NTU-60 rules: label = action id - 1).

NTU layout. One performance = (setup, performer, replication, action), recorded at
once by cameras 1, 2, 3 (0, -45, +45 deg; see synth_camera), one file each:
`SsssCcccPpppRrrrAaaa.skeleton`. Performers 1..P each perform every class
`per_class` times (replications 1..K); the setup is 1 + ((P - 1) // 3) % 17, so a
setup groups three performers and fixes the camera placement. Hence:
- X-Sub (NTU-60 training performers {1, 2, 4, 5, 8, 9, 13, ...}) puts performers
  1, 2 in training and 3 in test: with P >= 3 both sides have every class;
- X-View (train cameras 2, 3, test camera 1) sees every performance on both sides.
Files: classes x performers x per_class x 3 (defaults 16 x 10 x 2 x 3 = 960).
Beside them: `actions.txt` (line i = name of action A(i)) and `synth.json` (config and
counts).

PKU layout (`format="pku"`, see synth_pku): `skeleton/AxxNyy-V.txt`,
`label/AxxNyy-V.txt`, `cross_subject_v2.txt`, `actions.txt` (line i = label i).

Determinism: every random draw comes from a generator seeded by (seed, what it is for,
identity), e.g. a performance's motion from (seed, setup, performer, replication,
action) and a camera's noise from that plus the camera id. Generating a subset, in a
different order or in parallel gives the same bytes. Writes go to a temporary name
and are renamed; a file whose bytes are already there is not rewritten.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from slim.ingest.synth_camera import make_setup_cameras
from slim.ingest.synth_motions import MAX_CLASSES, Action, animate, choose_classes, draw_frames
from slim.ingest.synth_ntu import format_file, record_file
from slim.ingest.synth_skeleton import make_performer, pose_in_world

#: NTU-60 X-Sub training performers (PROTOCOLS.md), used to check a config's split.
NTU60_TRAIN_PERFORMERS = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28,
                                    31, 34, 35, 38})
CAMERAS = (1, 2, 3)
MIN_FRAMES, MAX_FRAMES = 40, 160
# Tags that keep the generators of different purposes apart.
_PERFORMER, _PERFORMANCE, _CAMERA, _SETUP = 1, 2, 3, 4


@dataclass(frozen=True)
class SynthConfig:
    """`slim-ingest synth` settings.

    classes: number of action classes (1..25, see synth_motions.choose_classes);
    performers: performer ids 1..P (>= 3 so that X-Sub has a test side);
    per_class: replications of each class by each performer (NTU) or instances of each
    class per performer (PKU); seed: everything random derives from it;
    format: "ntu" or "pku"; facing_jitter_deg: the performer faces camera 2 or 3 (by
    replication, as in NTU) up to this many degrees off (uniform).
    """

    classes: int = 16
    performers: int = 10
    per_class: int = 2
    seed: int = 0
    format: str = "ntu"
    facing_jitter_deg: float = 60.0

    def validate(self) -> None:
        if self.format not in ("ntu", "pku"):
            raise ValueError(f"format must be 'ntu' or 'pku', got {self.format!r}")
        if not 1 <= self.classes <= MAX_CLASSES:
            raise ValueError(f"classes must be 1..{MAX_CLASSES} (the motion library's size), got {self.classes}")
        if not 3 <= self.performers <= 99:
            raise ValueError(f"performers must be 3..99 so that X-Sub has both sides, got {self.performers}")
        if not 1 <= self.per_class <= 99:
            raise ValueError(f"per_class must be 1..99, got {self.per_class}")
        if not 0 <= self.facing_jitter_deg <= 180:
            raise ValueError(f"facing_jitter_deg must be 0..180, got {self.facing_jitter_deg}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


def rng_for(seed: int, *identity: int) -> np.random.Generator:
    """The generator owned by one identity (a tag and ids) under `seed`."""
    return np.random.default_rng([seed, *identity])


def setup_of(performer: int) -> int:
    """Setup id (1..17) a performer is recorded in: three performers per setup."""
    return 1 + ((performer - 1) // 3) % 17


def ntu_name(setup: int, camera: int, performer: int, replication: int, action: int) -> str:
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"


@dataclass(frozen=True)
class Performance:
    setup: int
    performer: int
    replication: int
    action: int  # 1-based action id

    def identity(self) -> tuple[int, int, int, int]:
        return self.setup, self.performer, self.replication, self.action


def performances(cfg: SynthConfig) -> Iterator[Performance]:
    """All NTU performances of a config, in file-name order of their first camera."""
    for p in range(1, cfg.performers + 1):
        for r in range(1, cfg.per_class + 1):
            for a in range(1, cfg.classes + 1):
                yield Performance(setup_of(p), p, r, a)


def world_bodies(cfg: SynthConfig, perf: Performance, action: Action,
                 facing_deg: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 3D motion of one performance in world space.

    Returns per performer (joints [T, V, 3] metres, bone rotations [T, V, 3, 3]),
    T in 40..160 frames. The performer faces camera 2 (odd replication) or 3 (even),
    +-cfg.facing_jitter_deg, unless `facing_deg` is given.
    """
    rng = rng_for(cfg.seed, _PERFORMANCE, *perf.identity())
    T = draw_frames(action, rng, MIN_FRAMES, MAX_FRAMES)
    body = make_performer(rng_for(cfg.seed, _PERFORMER, perf.performer))
    partner = make_performer(rng)
    poses, dist = animate(action, T, rng, (body.arm_hang, partner.arm_hang))
    if facing_deg is None:
        j = cfg.facing_jitter_deg
        facing_deg = (-45.0 if perf.replication % 2 else 45.0) + rng.uniform(-j, j)
    facing = np.deg2rad(facing_deg)
    place = np.array([rng.uniform(-0.4, 0.4), 0.0, rng.uniform(-0.4, 0.4)])
    if len(poses) == 1:
        return [pose_in_world(body, poses[0], facing, place)]
    # The two face each other on a line across the performer's facing direction.
    axis = facing + np.pi / 2
    toward = np.array([-np.sin(axis), 0.0, -np.cos(axis)])  # forward of yaw `axis`
    return [pose_in_world(body, poses[0], axis, place - toward * dist / 2),
            pose_in_world(partner, poses[1], axis + np.pi, place + toward * dist / 2)]


def ntu_files(cfg: SynthConfig, perf: Performance, actions: tuple[Action, ...]) -> dict[str, bytes]:
    """The three camera files of one performance: {file name: bytes}."""
    bodies = world_bodies(cfg, perf, actions[perf.action - 1])
    cams = make_setup_cameras(rng_for(cfg.seed, _SETUP, perf.setup))
    out = {}
    for c in CAMERAS:
        tracks, T = record_file(bodies, cams[c], rng_for(cfg.seed, _CAMERA, *perf.identity(), c))
        out[ntu_name(perf.setup, c, perf.performer, perf.replication, perf.action) + ".skeleton"] = \
            format_file(tracks, T)
    return out


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write `data` unless the file already holds exactly it. True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def _progress(total: int, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        disable=not enabled, transient=False)
    return progress, progress.add_task("files", total=total)


def planned_files(cfg: SynthConfig) -> tuple[int, str]:
    """(number of raw files a generation writes, the product that gives it, in words)."""
    if cfg.format == "pku":
        from slim.ingest.synth_pku import INSTANCES_PER_VIDEO, pku_video_count
        n = pku_video_count(cfg)
        per = n // cfg.performers
        return n * 3, (f"{cfg.classes} classes x {cfg.per_class} instances per performer, {INSTANCES_PER_VIDEO} "
                       f"instances a video -> {per} videos x {cfg.performers} performers x 3 views (L, M, R) "
                       f"= {n * 3} skeleton files (each with its label file)")
    n = cfg.classes * cfg.performers * cfg.per_class * len(CAMERAS)
    return n, (f"{cfg.classes} classes x {cfg.performers} performers x {cfg.per_class} replications x "
               f"{len(CAMERAS)} cameras = {n} .skeleton files")


MANIFEST = "synth.json"


class NotGeneratedFolder(ValueError):
    """--out holds raw files that no earlier generation wrote (no synth.json)."""


def _generated_kind(rel: str) -> bool:
    """Whether a file name (relative to the folder) is one the generator writes."""
    return rel.endswith(".skeleton") or rel.startswith(("skeleton/", "label/")) or rel == "cross_subject_v2.txt"


def _raw_files(out_dir: Path) -> set[str]:
    return {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")
            if p.is_file() and _generated_kind(p.relative_to(out_dir).as_posix())}


def generate(out_dir: Path, cfg: SynthConfig, progress: bool = True) -> dict:
    """Write a synthetic dataset under out_dir; returns a summary dict (format, files,
    written, unchanged, removed, bytes, classes, num_classes, performers, seconds, out_dir).

    The folder carries its own manifest, `synth.json` (config and every file name),
    written first (so an interrupted generation is still recognised) and completed last.
    Raw files of an earlier generation that this one does not write are removed, so a
    later ingest never takes them. Raises NotGeneratedFolder, before writing anything,
    when out_dir holds raw files but no synth.json (someone else's data)."""
    cfg.validate()
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    if out_dir.is_dir() and not manifest.is_file():
        foreign = _raw_files(out_dir)
        if foreign:
            raise NotGeneratedFolder(
                f"{out_dir} holds {len(foreign)} raw skeleton files (e.g. {sorted(foreign)[0]}) but no "
                f"{MANIFEST}: they were not written by the generator, and mixing them with generated "
                "files would put both into the next ingest")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not manifest.is_file():  # mark the folder as generated before the first raw file
        write_if_changed(manifest, (json.dumps({"config": asdict(cfg), "complete": False}, indent=2) + "\n").encode())
    actions = choose_classes(cfg.classes)
    t0 = time.perf_counter()
    written = unchanged = size = 0
    names: list[str] = []
    if cfg.format == "pku":
        from slim.ingest.synth_pku import pku_files

        jobs = pku_files(cfg, actions, rng_for)
    else:
        jobs = (ntu_files(cfg, perf, actions) for perf in performances(cfg))
    total, _ = planned_files(cfg)
    bar, task = _progress(total, progress)
    with bar:
        for files in jobs:
            for name, data in files.items():
                path = out_dir / name
                path.parent.mkdir(parents=True, exist_ok=True)
                if write_if_changed(path, data):
                    written += 1
                else:
                    unchanged += 1
                size += len(data)
                names.append(name)
                if name.endswith(".skeleton") or name.startswith("skeleton/"):
                    bar.advance(task)
    stale = sorted(_raw_files(out_dir) - set(names))
    for rel in stale:
        (out_dir / rel).unlink()
    write_if_changed(out_dir / "actions.txt", "".join(a.name + "\n" for a in actions).encode())
    summary = {
        "format": cfg.format, "out_dir": str(out_dir), "files": written + unchanged,
        "written": written, "unchanged": unchanged, "removed": len(stale), "bytes": size,
        "classes": [a.name for a in actions], "num_classes": len(actions),
        "performers": cfg.performers, "seconds": round(time.perf_counter() - t0, 3),
    }
    record = {"config": asdict(cfg), "complete": True,
              **{k: v for k, v in summary.items() if k not in ("seconds", "written", "unchanged", "out_dir",
                                                                "removed")},
              "file_names": sorted(names)}
    write_if_changed(manifest, (json.dumps(record, indent=2) + "\n").encode())
    return summary
