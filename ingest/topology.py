"""Skeleton layouts: the data facts every stage shares, as data (DESIGN.md "Skeleton
layouts").

A `Layout` holds a skeleton's joint names, parents, mirror pairs, semantic groups and
centre joint; everything else (topological order, bones, mirror permutation, group of
each joint) is derived from those. Layouts are registered by name in `LAYOUTS`; the name
is stored in `samples.h5` (attribute `layout`), the manifest (`slim.layout`) and the
card, and the pipeline, the model and evaluation look the layout up from there with
`get_layout(name)`. A new skeleton is one `register(Layout(...))` call in this file.

All indices are 0-based. Axes of the stored coordinates: x lateral, y up (gravity),
z depth from the camera, in metres.

Registered:
- `ntu25`: Kinect v2, 25 joints (NTU RGB+D 60/120, PKU-MMD II). Source: PROTOCOLS.md
  ("Skeleton topology"); the paper's appendix lists the mirror pairs 1-based.
- `kinect_v1_20`: Kinect v1, 20 joints (NW-UCLA). Joint order: the NUI_SKELETON_POSITION
  enumeration of the Kinect for Windows SDK 1.x, as in the NW-UCLA JSON files (facts in
  ../shared/datasets/SOURCES.md); parents: the SDK's skeleton hierarchy.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Layout:
    """One skeleton layout.

    name: registry key (stored with the data); joint_names: V names; parents: V parent
    indices (-1 for the single root); mirror_pairs: (left, right) joint pairs;
    groups: (group name, joints) for tube masking and bone scaling, a partition of the
    joints, each list ordered so that a contiguous run of it is a connected chain;
    center_joint: joint the ingest and the views centre on.

    Raises ValueError (from `__post_init__`) when the facts are inconsistent: not one
    root, a cycle, groups that do not partition the joints, a mirror that is not an
    involution or does not keep the tree.
    """
    name: str
    description: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    mirror_pairs: tuple[tuple[int, int], ...]
    groups: tuple[tuple[str, tuple[int, ...]], ...]
    center_joint: int

    def __post_init__(self):
        v = len(self.joint_names)
        if len(self.parents) != v or self.parents.count(-1) != 1:
            raise ValueError(f"layout {self.name}: need one parent per joint and exactly one root")
        if sorted(self.topo_order) != list(range(v)):
            raise ValueError(f"layout {self.name}: parents do not form a tree (cycle or dangling joint)")
        flat = sorted(j for _, g in self.groups for j in g)
        if flat != list(range(v)):
            raise ValueError(f"layout {self.name}: groups must partition the {v} joints")
        perm = self.mirror_perm
        if not np.array_equal(perm[perm], np.arange(v)):
            raise ValueError(f"layout {self.name}: mirror pairs overlap")
        for j, p in enumerate(self.parents):
            if p >= 0 and self.parents[perm[j]] != perm[p]:
                raise ValueError(f"layout {self.name}: mirroring joint {j} breaks the tree")
        if not 0 <= self.center_joint < v:
            raise ValueError(f"layout {self.name}: centre joint out of range")

    @property
    def num_joints(self) -> int:
        """V, the number of joints."""
        return len(self.joint_names)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    @cached_property
    def joint_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.joint_names)}

    @cached_property
    def topo_order(self) -> tuple[int, ...]:
        """Parent-before-child traversal (BFS from the root). Never assume index order is
        one: in ntu25, Neck (2) hangs from SpineShoulder (20)."""
        children: dict[int, list[int]] = {i: [] for i in range(len(self.parents))}
        for j, p in enumerate(self.parents):
            if p >= 0:
                children[p].append(j)
        order, queue, seen = [], deque([self.parents.index(-1)]), set()
        while queue:
            j = queue.popleft()
            if j in seen:
                break
            seen.add(j)
            order.append(j)
            queue.extend(children[j])
        return tuple(order)

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs, one per non-root joint, in parent-before-child order."""
        return tuple((j, self.parents[j]) for j in self.topo_order if self.parents[j] >= 0)

    @cached_property
    def mirror_perm(self) -> np.ndarray:
        """int64 [V]: `x_mirrored[..., j, :] = x[..., mirror_perm[j], :]` (then negate x)."""
        perm = np.arange(len(self.joint_names))
        for a, b in self.mirror_pairs:
            perm[a], perm[b] = b, a
        perm.setflags(write=False)
        return perm

    @property
    def group_dict(self) -> dict[str, tuple[int, ...]]:
        return dict(self.groups)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.groups)

    @cached_property
    def group_of_joint(self) -> np.ndarray:
        """int64 [V]: index into group_names of each joint's group."""
        g = np.full(len(self.joint_names), -1, dtype=np.int64)
        for k, (_, joints) in enumerate(self.groups):
            g[list(joints)] = k
        g.setflags(write=False)
        return g

    def bone_lengths(self, joints: np.ndarray) -> np.ndarray:
        """Length of every bone: joints [..., V, 3] (metres) -> [..., len(bones)]
        (metres), in `bones` order."""
        child = np.array([c for c, _ in self.bones])
        parent = np.array([p for _, p in self.bones])
        return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)

    def describe(self) -> dict:
        """JSON-able summary for cards and result files."""
        return {"name": self.name, "joints": self.num_joints, "joint_names": list(self.joint_names),
                "center_joint": self.joint_names[self.center_joint]}


LAYOUTS: dict[str, Layout] = {}
#: Names written by older ingest versions -> registered names.
ALIASES: dict[str, str] = {"kinect-v2-25": "ntu25"}


def register(layout: Layout) -> Layout:
    """Add a layout to the registry (the one place a new skeleton is added)."""
    if layout.name in LAYOUTS:
        raise ValueError(f"layout {layout.name!r} is already registered")
    LAYOUTS[layout.name] = layout
    return layout


def get_layout(name: str) -> Layout:
    """The registered layout called `name` (old names in ALIASES accepted). Raises
    KeyError naming the known layouts."""
    key = ALIASES.get(name, name)
    if key not in LAYOUTS:
        raise KeyError(f"unknown skeleton layout {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[key]


def canonical_name(name: str) -> str:
    """The registered name of `name` (resolving ALIASES); unknown names unchanged."""
    return ALIASES.get(name, name)


NTU25 = register(Layout(
    name="ntu25",
    description="Kinect v2, 25 joints (NTU RGB+D 60/120, PKU-MMD II)",
    joint_names=(
        "SpineBase", "SpineMid", "Neck", "Head",
        "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
        "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
        "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
        "HipRight", "KneeRight", "AnkleRight", "FootRight",
        "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
    ),
    parents=(-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11),
    mirror_pairs=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19),
                  (21, 23), (22, 24)),
    groups=(("torso", (0, 1, 20, 2, 3)), ("left_arm", (4, 5, 6, 7, 21, 22)),
            ("right_arm", (8, 9, 10, 11, 23, 24)), ("left_leg", (12, 13, 14, 15)),
            ("right_leg", (16, 17, 18, 19))),
    center_joint=1,  # SpineMid: the reference preprocessing centres on it
))

KINECT_V1_20 = register(Layout(
    name="kinect_v1_20",
    description="Kinect v1, 20 joints (NW-UCLA)",
    joint_names=(
        "HipCenter", "Spine", "ShoulderCenter", "Head",
        "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
        "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
        "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
        "HipRight", "KneeRight", "AnkleRight", "FootRight",
    ),
    parents=(-1, 0, 1, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18),
    mirror_pairs=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19)),
    groups=(("torso", (0, 1, 2, 3)), ("left_arm", (4, 5, 6, 7)), ("right_arm", (8, 9, 10, 11)),
            ("left_leg", (12, 13, 14, 15)), ("right_leg", (16, 17, 18, 19))),
    center_joint=1,  # Spine, Kinect v2's SpineMid: the same centring rule as NTU
))


@dataclass(frozen=True)
class LayoutMap:
    """How one layout's joints become another's (ingest `--layout`).

    source_of: per target joint, the source joint it is copied from; filled: target
    joint name -> source joint name for the target joints the source does not have
    (copied from their nearest source joint).
    """
    source: str
    target: str
    source_of: tuple[int, ...]
    filled: dict

    def apply(self, joints: np.ndarray) -> np.ndarray:
        """joints [..., V_source, 3] -> [..., V_target, 3] (a copy)."""
        return np.ascontiguousarray(joints[..., list(self.source_of), :])

    def describe(self) -> dict:
        return {"from": self.source, "to": self.target, "filled_joints": dict(self.filled),
                "rule": MAPPING_RULE}


#: The documented mapping rule (README, card).
MAPPING_RULE = ("joints both layouts have are copied by name (Kinect v1 ShoulderCenter is "
                "Kinect v2 SpineShoulder, Spine is SpineMid, HipCenter is SpineBase); each joint the "
                "source lacks is copied from its nearest source joint along the target tree "
                "(its closest ancestor the source has): Neck <- ShoulderCenter, HandTip/Thumb <- Hand")

#: Kinect v1 name of each NTU-25 joint.
_V1_FOR_NTU = {
    "SpineBase": "HipCenter", "SpineMid": "Spine", "SpineShoulder": "ShoulderCenter",
    "Neck": "ShoulderCenter", "Head": "Head",
    **{f"{part}{side}": f"{part}{side}" for side in ("Left", "Right")
       for part in ("Shoulder", "Elbow", "Wrist", "Hand", "Hip", "Knee", "Ankle", "Foot")},
    "HandTipLeft": "HandLeft", "ThumbLeft": "HandLeft",
    "HandTipRight": "HandRight", "ThumbRight": "HandRight",
}
_V1_FILLED = ("Neck", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight")

MAPPINGS: dict[tuple[str, str], LayoutMap] = {
    ("kinect_v1_20", "ntu25"): LayoutMap(
        source="kinect_v1_20", target="ntu25",
        source_of=tuple(KINECT_V1_20.joint_index[_V1_FOR_NTU[n]] for n in NTU25.joint_names),
        filled={n: _V1_FOR_NTU[n] for n in _V1_FILLED}),
}


def get_mapping(source: str, target: str) -> LayoutMap:
    """The mapping source -> target. Raises KeyError listing what exists."""
    key = (canonical_name(source), canonical_name(target))
    if key not in MAPPINGS:
        have = ", ".join(f"{a} -> {b}" for a, b in MAPPINGS) or "none"
        raise KeyError(f"no mapping from layout {source!r} to {target!r}; known: {have}")
    return MAPPINGS[key]
