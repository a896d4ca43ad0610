"""Centering (reference `seq_translation`) and the final cleanup into a stored sample."""
from __future__ import annotations

import numpy as np

from slim.ingest.topology import NTU25, get_layout

#: The recorded centring rule of NTU-layout data (reference `seq_translation`).
NORMALIZATION = "center:spine_mid(joint 1) of actor 1 in its first present frame; metres"


def normalization_for(layout: str) -> str:
    """The recorded centring rule for data stored in `layout`: the same rule as NTU
    (the layout's centre joint of actor 1 in its first present frame), naming the joint."""
    lay = get_layout(layout)
    if lay.name == NTU25.name:
        return NORMALIZATION
    c = lay.center_joint
    return f"center:{lay.joint_names[c]}(joint {c}) of actor 1 in its first present frame; metres"


def center_joints(joints: np.ndarray, center_joint: int = NTU25.center_joint) -> np.ndarray:
    """joints float32 [T, S, V, 3] (metres, empty slot-frames all zero) -> same shape,
    minus joint `center_joint` (the layout's centre joint; 1 = SpineMid for ntu25, Spine
    for kinect_v1_20) of slot 0 in the first frame where slot 0 is nonzero; slot-frames
    that were empty stay zero. Raises ValueError when slot 0 is never present."""
    present0 = np.flatnonzero((joints[:, 0] != 0).any(axis=(1, 2)))
    if present0.size == 0:
        raise ValueError("actor 1 is all zeros in every frame")
    origin = joints[present0[0], 0, center_joint].copy()
    empty = joints.reshape(joints.shape[0], joints.shape[1], -1).sum(axis=2) == 0
    out = joints - origin
    out[empty] = 0
    return out


def finalize(joints: np.ndarray, notes: list[str], center: bool = True,
             center_joint: int = NTU25.center_joint) -> np.ndarray:
    """Actor slots [T, S, V, 3] -> stored sample [T, M, V, 3]: drop frames with NaN
    (the reference's `remove_nan_frames`), keep slot 2 only when someone is ever in it
    (never a copy of actor 1), and centre (unless `center` is False). Raises ValueError
    when nothing is left or actor 1 is never present."""
    nan = np.isnan(joints).any(axis=(1, 2, 3))
    if nan.any():
        notes.append(f"{int(nan.sum())} frames with NaN, infinite or impossible coordinates "
                     "dropped")
        joints = joints[~nan]
    if joints.shape[0] == 0:
        raise ValueError("no frame left after removing frames with NaN, infinite or impossible "
                         "coordinates")
    if joints.shape[1] == 2 and not (joints[:, 1] != 0).any():
        joints = joints[:, :1]
    if joints.shape[1] == 2 and not (joints[:, 0] != 0).any():
        joints = joints[:, 1:]
    if not (joints[:, 0] != 0).any():
        raise ValueError("every joint is zero")
    out = center_joints(joints, center_joint) if center else joints
    return np.ascontiguousarray(out, dtype=np.float32)
