"""Synthetic PKU-MMD phase II: long videos with several labelled action instances.

Layout under the output folder:
- `skeleton/AxxNyy-V.txt`: one line per frame, 150 `%f` values = 2 persons x 25 joints
  x xyz (camera space, metres); person 2 is 75 zeros while absent. As in the real
  fixture A10N08-L.txt, the first line starts with its number and every later line
  with a space; LF line endings.
- `label/AxxNyy-V.txt`: one `label,start,end,confidence` row per instance (label
  1-based, start/end 0-based frame indices, end inclusive, confidence 1 or 2). Every
  video has at least 15 idle frames before its first and after its last instance, so
  the segments lie inside the video under any of the usual readings (0- or 1-based,
  end inclusive or exclusive).
- `cross_subject_v2.txt`: `Training videos:` line, comma-separated names, `Validataion
  videos:` (sic, as the official file) line, names.

Videos: Nyy = performer 1..P, Axx = group 1..G; views L, M, R are cameras at -45, 0,
+45 deg. The class sequence (every class `per_class` times) is cut into groups of 5
instances; every performer performs every group in a random order, with idle gaps of
15-60 frames in which the body walks/turns back smoothly to its next start. A second
person (the partner) enters 20-60 frames before the video's first interaction and stays
until the end, idle beside the performer between interactions. Test performers are
N02, N03, N07 (those of the real split) that exist, so with P >= 3 both sides hold
every class.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np

from slim.ingest.synth_camera import make_setup_cameras
from slim.ingest.synth_motions import Action, Pose, animate, draw_frames, idle, smoothstep
from slim.ingest.synth_ntu import JITTER_M
from slim.ingest.synth_skeleton import axis_rot, make_performer, pose_in_world
from slim.ingest.topology import NTU25

# NTU-format data: the ntu25 layout.
NUM_JOINTS = NTU25.num_joints

VIEWS = {"L": 2, "M": 1, "R": 3}  # view letter -> camera id of synth_camera
INSTANCES_PER_VIDEO = 5
TEST_PERFORMERS = (2, 3, 7)
_PKU_VIDEO, _PKU_CAMERA, _PERFORMER, _SETUP = 11, 12, 1, 4


def video_name(group: int, performer: int, view: str) -> str:
    return f"A{group:02d}N{performer:02d}-{view}"


def groups(cfg) -> list[list[int]]:
    """Class indices (0-based) performed in each group: the sequence 0..N-1 repeated
    per_class times, cut into runs of INSTANCES_PER_VIDEO."""
    seq = [c for _ in range(cfg.per_class) for c in range(cfg.classes)]
    return [seq[i:i + INSTANCES_PER_VIDEO] for i in range(0, len(seq), INSTANCES_PER_VIDEO)]


def pku_video_count(cfg) -> int:
    return math.ceil(cfg.classes * cfg.per_class / INSTANCES_PER_VIDEO) * cfg.performers


class _Timeline:
    """One person's key segments (start frame, pose, facing radians, place [3]) in time
    order; `render` fills the gaps with idle glides and returns world joints."""

    def __init__(self, body, rng: np.random.Generator):
        self.body, self.rng, self.keys = body, rng, []

    def add(self, start: int, pose: Pose, facing: float, place: np.ndarray) -> None:
        self.keys.append((start, pose, facing, np.asarray(place, dtype=np.float64)))

    def _glide(self, n: int, a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> np.ndarray:
        P = Pose(n)
        idle(P, self.body.arm_hang, self.rng)
        s = smoothstep(np.linspace(0.0, 1.0, n))[:, None]
        yaw_b = a[0] + (b[0] - a[0] + np.pi) % (2 * np.pi) - np.pi  # shortest turn
        facing = a[0] + (yaw_b - a[0]) * s[:, 0]
        return pose_in_world(self.body, P, facing, a[1] + (b[1] - a[1]) * s)[0]

    def render(self, first: int, total: int) -> np.ndarray:
        """World joints [total - first, V, 3] (metres) from frame `first` to the end."""
        out, t, prev = [], first, None
        for start, pose, facing, place in self.keys:
            begin = (facing, place)
            if start > t:
                out.append(self._glide(start - t, prev or begin, begin))
            out.append(pose_in_world(self.body, pose, facing, place)[0])
            face = axis_rot("y", facing)[0]
            prev = (facing + pose.root_yaw[-1], place + face @ pose.root_shift[-1])
            t = start + pose.T
        if total > t:
            out.append(self._glide(total - t, prev, prev))
        return np.concatenate(out)


def _video(cfg, actions: tuple[Action, ...], group: list[int], g: int, p: int, rng_for: Callable):
    """World motion of one video: (joints [F, 2, V, 3] metres, person-2 present bool
    [F], label rows [(label 1-based, start, end inclusive)])."""
    rng = rng_for(cfg.seed, _PKU_VIDEO, g, p)
    body, partner = make_performer(rng_for(cfg.seed, _PERFORMER, p)), make_performer(rng)
    home = np.array([rng.uniform(-0.3, 0.3), 0.0, rng.uniform(-0.3, 0.3)])
    side = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(1.2, 1.6), 0.0, rng.uniform(0.2, 0.6)])
    one, two = _Timeline(body, rng), _Timeline(partner, rng)
    t, labels, first_pair = int(rng.integers(15, 61)), [], None
    for c in rng.permutation(group):
        action = actions[c]
        T = draw_frames(action, rng)
        poses, dist = animate(action, T, rng, (body.arm_hang, partner.arm_hang))
        facing = np.deg2rad(rng.uniform(-25, 25))
        if len(poses) == 2:
            first_pair = t if first_pair is None else first_pair
            axis = facing + np.pi / 2
            toward = np.array([-np.sin(axis), 0.0, -np.cos(axis)])
            one.add(t, poses[0], axis, home - toward * dist / 2)
            two.add(t, poses[1], axis + np.pi, home + toward * dist / 2)
        else:
            one.add(t, poses[0], facing, home)
            wait = Pose(T)
            idle(wait, partner.arm_hang, rng)
            two.add(t, wait, np.arctan2(side[0], side[2]), home + side)  # looks at the performer
        labels.append((int(c) + 1, t, t + T - 1))
        t += T + int(rng.integers(15, 61))
    total = t
    joints = np.zeros((total, 2, NUM_JOINTS, 3))
    joints[:, 0] = one.render(0, total)
    present = np.zeros(total, dtype=bool)
    if first_pair is not None:
        enter = max(0, first_pair - int(rng.integers(20, 61)))
        two.keys = [k for k in two.keys if k[0] >= enter]
        joints[enter:, 1] = two.render(enter, total)
        present[enter:] = True
    return joints, present, labels


def _format_video(xyz: np.ndarray) -> bytes:
    """[F, 2, V, 3] camera-space metres (zeros for an absent person) -> file bytes."""
    flat = (xyz.reshape(len(xyz), -1) + 0.0).tolist()
    line = " ".join(["%f"] * (xyz[0].size))
    return ("\n ".join(line % tuple(row) for row in flat) + "\n").encode("ascii")


def pku_files(cfg, actions: tuple[Action, ...], rng_for: Callable) -> Iterator[dict[str, bytes]]:
    """Per video (all three views): {relative path: bytes} for skeleton and label files;
    the split file comes last."""
    all_groups = groups(cfg)
    names = {"train": [], "test": []}
    for g, group in enumerate(all_groups, start=1):
        for p in range(1, cfg.performers + 1):
            joints, present, labels = _video(cfg, actions, group, g, p, rng_for)
            cams = make_setup_cameras(rng_for(cfg.seed, _SETUP, 1000 + p))
            out = {}
            for view, cam_id in VIEWS.items():
                name = video_name(g, p, view)
                rng = rng_for(cfg.seed, _PKU_CAMERA, g, p, cam_id)
                xyz = cams[cam_id].to_camera(joints) + rng.normal(0.0, JITTER_M, joints.shape)
                xyz[:, 1] *= present[:, None, None]
                out[f"skeleton/{name}.txt"] = _format_video(xyz)
                conf = rng.choice([1, 2], size=len(labels), p=[0.2, 0.8])
                out[f"label/{name}.txt"] = "".join(
                    f"{lab},{s},{e},{k}\n" for (lab, s, e), k in zip(labels, conf)).encode()
                names["test" if p in TEST_PERFORMERS else "train"].append(name)
            yield out
    yield {"cross_subject_v2.txt": ("Training videos:\n" + ", ".join(names["train"]) + "\n"
                                    "Validataion videos:\n" + ", ".join(names["test"]) + "\n").encode()}
