"""Synthetic NTU files: structure (read back with an independent reader), bone lengths,
determinism, splits, left/right mirror classes, defect rates."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from slim.ingest.synth import (NTU60_TRAIN_PERFORMERS, Performance, SynthConfig, generate, ntu_files,
                               rng_for, world_bodies)
from slim.ingest.synth_camera import make_setup_cameras
from slim.ingest.synth_motions import SINGLE, animate, choose_classes
from slim.ingest.synth_ntu import record_file
from slim.ingest.synth_skeleton import forward_kinematics, make_performer, pose_in_world
from slim.ingest.topology import NTU25

BONES, MIRROR_PERM = NTU25.bones, NTU25.mirror_perm

CFG = SynthConfig(classes=4, performers=4, per_class=1, seed=7)
NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})\.skeleton")


def read_skeleton(path: Path) -> list[list[dict]]:
    """Minimal independent reader: per frame a list of bodies {id, body, joints [25, 12]}."""
    raw = path.read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in b"".join(lines), "every line must end with CRLF"
    it = iter(lines[:-1])
    frames = []
    for _ in range(int(next(it))):
        bodies = []
        for _ in range(int(next(it))):
            head = next(it).split(b" ")
            assert len(head) == 10
            assert int(next(it)) == 25
            joints = np.array([[float(v) for v in next(it).split(b" ")] for _ in range(25)])
            assert joints.shape == (25, 12)
            bodies.append({"id": int(head[0]), "body": [float(v) for v in head[1:]], "joints": joints})
        frames.append(bodies)
    assert next(it, None) is None, "trailing lines after the last frame"
    return frames


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, CFG, progress=False)


def test_layout_names_and_actions_file(dataset):
    out, summary = dataset
    names = sorted(p.name for p in out.glob("*.skeleton"))
    assert summary["files"] == len(names) == 4 * 4 * 1 * 3
    ids = [tuple(map(int, NAME.fullmatch(n).groups())) for n in names]
    assert {c for _, c, _, _, _ in ids} == {1, 2, 3} and {a for *_, a in ids} == {1, 2, 3, 4}
    assert (out / "actions.txt").read_text().splitlines() == [a.name for a in choose_classes(4)]


def test_structure_and_values(dataset):
    out, _ = dataset
    frames = read_skeleton(out / "S001C001P001R001A004.skeleton")  # handshake: two bodies
    ids = {b["id"] for f in frames for b in f}
    assert len(ids) >= 2 and all(2 ** 56 < i < 2 ** 56 + 10 ** 5 for i in ids)
    assert max(ids) - min(ids) < 10  # the bodies differ only in the last digits
    assert max(len(f) for f in frames) == 2
    j = np.concatenate([b["joints"] for f in frames for b in f])
    assert set(np.unique(j[:, 11])) <= {1.0, 2.0}
    assert np.all((j[:, 2] > 2.0) & (j[:, 2] < 5.5))  # depth in metres
    assert np.all((j[:, 3] > -50) & (j[:, 3] < 560) & (j[:, 5] > -200) & (j[:, 5] < 2100))
    ends = j.reshape(-1, 25, 12)[:, [3, 15, 19, 21, 22, 23, 24], 7:11]
    assert np.all(ends == 0)
    q = j.reshape(-1, 25, 12)[:, [0, 1, 2, 4, 5], 7:11]
    assert np.allclose(np.linalg.norm(q, axis=-1), 1, atol=1e-5)


def test_number_formatting(dataset):
    out, _ = dataset
    text = (out / "S001C002P002R001A001.skeleton").read_text()
    tokens = set(text.split())
    assert "-0" not in tokens and "0.0" not in tokens and "0" in tokens
    assert not re.search(r"\de[+-]", text)  # capital E only, like the real files
    floats = [t for t in tokens if "." in t and "E" not in t]
    assert max(len(t.lstrip("-").replace(".", "").lstrip("0")) for t in floats) <= 7


def test_bone_lengths_constant_per_body(dataset):
    out, _ = dataset
    child, parent = np.array(BONES).T
    for path in sorted(out.glob("*P003*.skeleton")):
        per_body: dict[int, list[np.ndarray]] = {}
        for f in read_skeleton(path):
            for b in f:
                per_body.setdefault(b["id"], []).append(b["joints"])
        for body_id, seq in per_body.items():
            j = np.stack(seq)
            if len(j) <= 11:  # spurious noise bodies are not people
                continue
            length = np.linalg.norm(j[:, child, :3] - j[:, parent, :3], axis=-1)
            tracked = (j[:, child, 11] == 2) & (j[:, parent, 11] == 2)
            dev = np.abs(length - np.median(length, axis=0))[tracked]
            assert dev.max() < 0.06, f"{path.name} body {body_id}: bone varies by {dev.max():.3f} m"


def test_deterministic_and_subset_equal(dataset, tmp_path):
    out, _ = dataset
    perf = Performance(2, 4, 1, 3)
    files = ntu_files(CFG, perf, choose_classes(CFG.classes))
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    other = ntu_files(SynthConfig(**{**CFG.__dict__, "seed": 8}), perf, choose_classes(CFG.classes))
    assert all(other[n] != files[n] for n in files)
    again = generate(out, CFG, progress=False)
    assert again["written"] == 0 and again["unchanged"] == again["files"]


def test_splits_keep_every_class_on_both_sides(dataset):
    out, _ = dataset
    ids = [tuple(map(int, NAME.fullmatch(p.name).groups())) for p in out.glob("*.skeleton")]
    for side in (True, False):
        assert {a for _, _, p, _, a in ids if (p in NTU60_TRAIN_PERFORMERS) == side} == {1, 2, 3, 4}
        assert {a for _, c, _, _, a in ids if (c in (2, 3)) == side} == {1, 2, 3, 4}


def test_left_right_classes_move_the_named_hand(dataset):
    out, _ = dataset
    for path in out.glob("*A00[123].skeleton"):
        j = np.stack([f[0]["joints"][:, :3] for f in read_skeleton(path) if f])
        rel = j - j[:, :1]  # relative to SpineBase: walking or turning is not hand motion
        reach = np.percentile(np.linalg.norm(rel - np.median(rel, axis=0), axis=-1), 90, axis=0)
        left, right = reach[7], reach[11]  # HandLeft, HandRight
        action = int(path.name[-12:-9])
        moving, still = (left, right) if action in (1, 3) else (right, left)
        assert moving > 3 * still, (path.name, left, right)


def test_left_class_is_exact_mirror_of_right():
    wave_left, wave_right = SINGLE[0], SINGLE[1]
    body = make_performer(np.random.default_rng(0))
    poses_l, _ = animate(wave_left, 60, np.random.default_rng(1), (0.1, 0.1))
    poses_r, _ = animate(wave_right, 60, np.random.default_rng(1), (0.1, 0.1))
    jl = pose_in_world(body, poses_l[0], 0.0, np.zeros(3))[0]
    jr = pose_in_world(body, poses_r[0], 0.0, np.zeros(3))[0]
    np.testing.assert_allclose(jl, jr[:, MIRROR_PERM] * np.array([-1.0, 1.0, 1.0]), atol=1e-9)


def test_forward_kinematics_rest_pose_keeps_offsets():
    body = make_performer(np.random.default_rng(3))
    T = 2
    eye = np.broadcast_to(np.eye(3), (T, 25, 3, 3))
    joints, _ = forward_kinematics(body.offsets, eye, eye[:, 0], np.zeros((T, 3)))
    child, parent = np.array(BONES).T
    np.testing.assert_allclose(joints[:, child] - joints[:, parent], np.broadcast_to(body.offsets[child], (T, 24, 3)))
    assert 1.1 < joints[0, 3, 1] - min(joints[0, 15, 1], joints[0, 19, 1]) < 1.8  # head joint above the feet


def test_defect_rates_are_realistic():
    cfg = SynthConfig(seed=1)
    action = choose_classes(1)[0]
    bodies = [tuple(a[:40] for a in b) for b in world_bodies(cfg, Performance(1, 1, 1, 1), action)]
    cam = make_setup_cameras(rng_for(0, 4, 1))[1]
    short = late_start = 0
    n = 300
    for i in range(n):
        tracks, T = record_file(bodies, cam, np.random.default_rng([5, i]))
        short += any(len(t.values) <= 11 for t in tracks)
        late_start += min(t.first for t in tracks) > 0
    assert 0.03 < short / n < 0.2
    assert 0.01 < late_start / n < 0.2
