"""Kinect v2 25-joint skeleton topology: the data facts every stage shares.

All indices are 0-based. Source: PROTOCOLS.md ("Skeleton topology"); the paper's
appendix lists the mirror pairs 1-based.

Axes of the stored coordinates: x lateral, y up (gravity), z depth from the camera,
in metres.
"""
from __future__ import annotations

from collections import deque

import numpy as np

NUM_JOINTS = 25
LAYOUT = "kinect-v2-25"

JOINT_NAMES: tuple[str, ...] = (
    "SpineBase", "SpineMid", "Neck", "Head",
    "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
    "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
    "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
    "HipRight", "KneeRight", "AnkleRight", "FootRight",
    "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
)
JOINT_INDEX: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}

ROOT = 0
#: Joint the reference preprocessing centres on (SpineMid).
CENTER_JOINT = 1

#: Parent of each joint; the root has -1.
PARENTS: tuple[int, ...] = (
    -1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11,
)


def _bfs_order(parents: tuple[int, ...]) -> tuple[int, ...]:
    children: dict[int, list[int]] = {i: [] for i in range(len(parents))}
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    order, queue = [], deque([parents.index(-1)])
    while queue:
        j = queue.popleft()
        order.append(j)
        queue.extend(children[j])
    return tuple(order)


#: Parent-before-child traversal (BFS from the root). Never use index order: joint 2
#: (Neck) has parent 20 (SpineShoulder), which comes later in index order.
TOPO_ORDER: tuple[int, ...] = _bfs_order(PARENTS)

#: Bones as (child, parent) pairs, one per non-root joint, in parent-before-child order.
#: This is the NTU bone list used to draw skeletons and to measure bone lengths.
BONES: tuple[tuple[int, int], ...] = tuple((j, PARENTS[j]) for j in TOPO_ORDER if PARENTS[j] >= 0)

#: Left/right pairs (left, right).
MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19), (21, 23), (22, 24),
)


def _mirror_perm() -> np.ndarray:
    perm = np.arange(NUM_JOINTS)
    for a, b in MIRROR_PAIRS:
        perm[a], perm[b] = b, a
    return perm


#: `x_mirrored[..., j, :] = x[..., MIRROR_PERM[j], :]` (then negate x).
MIRROR_PERM: np.ndarray = _mirror_perm()
MIRROR_PERM.setflags(write=False)

#: Semantic groups (tube masking, bone scaling). Each list is ordered so that a
#: contiguous run of it is a skeletally connected chain.
GROUPS: dict[str, tuple[int, ...]] = {
    "torso": (0, 1, 20, 2, 3),
    "left_arm": (4, 5, 6, 7, 21, 22),
    "right_arm": (8, 9, 10, 11, 23, 24),
    "left_leg": (12, 13, 14, 15),
    "right_leg": (16, 17, 18, 19),
}
GROUP_NAMES: tuple[str, ...] = tuple(GROUPS)


def _group_of() -> np.ndarray:
    g = np.full(NUM_JOINTS, -1, dtype=np.int64)
    for k, joints in enumerate(GROUPS.values()):
        g[list(joints)] = k
    return g


#: Index into GROUP_NAMES of the group each joint belongs to.
GROUP_OF_JOINT: np.ndarray = _group_of()
GROUP_OF_JOINT.setflags(write=False)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of every bone.

    joints: [..., V=25, 3] (metres) -> [..., len(BONES)] (metres), in BONES order.
    """
    child = np.array([c for c, _ in BONES])
    parent = np.array([p for _, p in BONES])
    return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)
