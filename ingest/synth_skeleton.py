"""Synthetic skeletons: per-performer bone lengths, a posable body, forward kinematics.

Body frame (the frame a `Pose` is written in): metres, y up, the performer faces -z and
their left hand is at -x. This is Kinect camera space for a person standing in front of
the sensor and facing it (in the real files the left shoulder has the smaller x).

A performer is a rest pose: one offset vector per joint from its parent (arms hanging,
feet pointing forward). Bone lengths are a 1.75 m adult's (measured on the real fixture
S001C001P001R001A001, averaged left/right, thighs and shins lengthened a little because
Kinect under-measures them) scaled by height (1.50-1.95 m) and by one factor per bone
pair in 0.9-1.1 (the same for left and right, so the skeleton is symmetric and a mirrored
motion is exactly a mirror image).

Forward kinematics: joint j's global rotation is its parent's global rotation times its
own local rotation; its position is its parent's position plus the parent's global
rotation applied to j's rest offset. So the local rotation of a joint turns the bones
that leave it (rotating ShoulderLeft moves the elbow, wrist and hand).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slim.ingest.topology import NTU25

# NTU-format data: the ntu25 layout.
MIRROR_PERM = NTU25.mirror_perm
NUM_JOINTS = NTU25.num_joints
PARENTS = NTU25.parents
TOPO_ORDER = NTU25.topo_order

#: (direction in the body frame, length in metres for a 1.75 m adult, proportion group)
#: of the bone from PARENTS[j] to j; the root has no bone.
_REST: dict[int, tuple[tuple[float, float, float], float, str]] = {
    1: ((0, 1, 0.02), 0.27, "spine"), 20: ((0, 1, -0.03), 0.21, "spine"),
    2: ((0, 1, 0.05), 0.07, "neck"), 3: ((0, 1, -0.05), 0.13, "neck"),
    4: ((-1, -0.12, 0.02), 0.15, "shoulder"), 8: ((1, -0.12, 0.02), 0.15, "shoulder"),
    5: ((-0.08, -1, 0.02), 0.26, "upper_arm"), 9: ((0.08, -1, 0.02), 0.26, "upper_arm"),
    6: ((-0.02, -1, -0.05), 0.24, "forearm"), 10: ((0.02, -1, -0.05), 0.24, "forearm"),
    7: ((0, -1, 0), 0.07, "hand"), 11: ((0, -1, 0), 0.07, "hand"),
    21: ((0, -1, 0), 0.05, "hand"), 23: ((0, -1, 0), 0.05, "hand"),
    22: ((0.3, -0.6, -0.6), 0.045, "hand"), 24: ((-0.3, -0.6, -0.6), 0.045, "hand"),
    12: ((-1, -0.35, 0), 0.075, "pelvis"), 16: ((1, -0.35, 0), 0.075, "pelvis"),
    13: ((0, -1, 0), 0.40, "thigh"), 17: ((0, -1, 0), 0.40, "thigh"),
    14: ((0, -1, 0), 0.38, "shin"), 18: ((0, -1, 0), 0.38, "shin"),
    15: ((0, -0.25, -1), 0.12, "foot"), 19: ((0, -0.25, -1), 0.12, "foot"),
}
_GROUPS = sorted({g for _, _, g in _REST.values()})
REF_HEIGHT = 1.75

#: Joints that touch the ground when standing (ankles, feet).
FOOT_JOINTS = (14, 15, 18, 19)


@dataclass(frozen=True)
class Performer:
    """One person's body: `offsets` float64 [V, 3] (metres, body frame, row 0 zero)."""

    height: float
    offsets: np.ndarray
    arm_hang: float  # radians the idle arms are held away from the body (style)


def make_performer(rng: np.random.Generator) -> Performer:
    """A random adult: height U[1.50, 1.95] m, each bone pair scaled by U[0.9, 1.1]."""
    height = float(rng.uniform(1.50, 1.95))
    factor = dict(zip(_GROUPS, rng.uniform(0.9, 1.1, size=len(_GROUPS))))
    offsets = np.zeros((NUM_JOINTS, 3))
    for j, (direction, length, group) in _REST.items():
        d = np.asarray(direction, dtype=np.float64)
        offsets[j] = d / np.linalg.norm(d) * length * factor[group] * height / REF_HEIGHT
    return Performer(height=height, offsets=offsets, arm_hang=float(rng.uniform(0.02, 0.15)))


def axis_rot(axis: str, angle: np.ndarray | float) -> np.ndarray:
    """Rotation matrices about a principal axis.

    angle: [T] (radians, right-handed) -> [T, 3, 3] (a scalar gives [1, 3, 3]).
    """
    a = np.atleast_1d(np.asarray(angle, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    k = 3 - i - j
    out[..., k, k] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


class Pose:
    """A motion being built: local joint rotations and root motion over T frames.

    `local` float64 [T, V, 3, 3] (identity = rest pose), `root_shift` float64 [T, 3]
    (metres, body frame of the start pose: +x right, -z forward), `root_yaw` [T]
    (radians about y), `lift` [T] (metres above the ground, for jumps).
    """

    def __init__(self, num_frames: int):
        self.T = num_frames
        self.local = np.broadcast_to(np.eye(3), (num_frames, NUM_JOINTS, 3, 3)).copy()
        self.root_shift = np.zeros((num_frames, 3))
        self.root_yaw = np.zeros(num_frames)
        self.lift = np.zeros(num_frames)

    def rot(self, joint: int, axis: str, angle: np.ndarray | float) -> "Pose":
        """Compose a rotation about `axis` (the joint's local frame) onto `joint`.

        angle: [T] or scalar (radians). Calls compose left to right: the first call is
        the outermost rotation.
        """
        self.local[:, joint] = self.local[:, joint] @ axis_rot(axis, angle)
        return self

    def mirrored(self) -> "Pose":
        """The left/right mirror image: x -> -x, left and right joints swapped."""
        m = np.diag([-1.0, 1.0, 1.0])
        out = Pose(self.T)
        out.local = m @ self.local[:, MIRROR_PERM] @ m
        out.root_shift = self.root_shift * np.array([-1.0, 1.0, 1.0])
        out.root_yaw = -self.root_yaw
        out.lift = self.lift.copy()
        return out


def forward_kinematics(offsets: np.ndarray, local: np.ndarray, root_rot: np.ndarray,
                       root_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose a skeleton, parent before child.

    offsets [V, 3] (metres), local [T, V, 3, 3], root_rot [T, 3, 3], root_pos [T, 3]
    (metres) -> (joints [T, V, 3] in metres, global rotations [T, V, 3, 3]).
    """
    T = local.shape[0]
    pos = np.empty((T, NUM_JOINTS, 3))
    rot = np.empty((T, NUM_JOINTS, 3, 3))
    root = TOPO_ORDER[0]
    rot[:, root] = root_rot @ local[:, root]
    pos[:, root] = root_pos
    for j in TOPO_ORDER[1:]:
        p = PARENTS[j]
        pos[:, j] = pos[:, p] + rot[:, p] @ offsets[j]
        rot[:, j] = rot[:, p] @ local[:, j]
    return pos, rot


def pose_in_world(performer: Performer, pose: Pose, facing: float,
                  place: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World joints of a performer doing `pose`, standing on the floor (y = 0).

    facing: scalar or [T] radians about y (0 = facing -z); place: [3] or [T, 3] metres
    (x, z used). Returns (joints [T, V, 3] metres, global rotations [T, V, 3, 3]). The
    body is lifted so that its lowest ankle/foot joint touches the floor in every frame,
    plus `pose.lift`.
    """
    facing = np.broadcast_to(np.asarray(facing, dtype=np.float64), (pose.T,))
    place = np.broadcast_to(np.asarray(place, dtype=np.float64), (pose.T, 3)) * np.array([1.0, 0.0, 1.0])
    root_rot = axis_rot("y", facing + pose.root_yaw)
    root_pos = np.einsum("tij,tj->ti", axis_rot("y", facing), pose.root_shift) + place
    joints, rot = forward_kinematics(performer.offsets, pose.local, root_rot, root_pos)
    ground = joints[:, FOOT_JOINTS, 1].min(axis=1)
    joints[:, :, 1] += (pose.lift - ground)[:, None]
    return joints, rot
