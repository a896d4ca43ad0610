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


#: `view=` choices of ingest: keep the camera's orientation, turn about the vertical (y)
#: axis only, or turn fully (spine up and hips/shoulders along x).
VIEWS = ("none", "yaw", "full")
#: Present frames of actor 1 whose body axes are averaged to orient the sequence.
VIEW_FRAMES = 5
VIEW_NOTES = {
    "yaw": "view:yaw (turned about y so that actor 1's left->right hip+shoulder direction "
           f"of its first {VIEW_FRAMES} present frames is +x)",
    "full": "view:full (rotated so that actor 1's spine base->shoulder centre is +y and its "
            f"left->right hip+shoulder direction is +x, first {VIEW_FRAMES} present frames)",
}
#: The joints that orient a body, by their names in each layout (NTU / Kinect v2 first,
#: Kinect v1 second).
_AXIS_JOINTS = {"base": ("SpineBase", "HipCenter"), "top": ("SpineShoulder", "ShoulderCenter"),
                "shoulder_l": ("ShoulderLeft",), "shoulder_r": ("ShoulderRight",),
                "hip_l": ("HipLeft",), "hip_r": ("HipRight",)}


def with_view(normalization: str, view: str) -> str:
    """The card's `normalization` sentence with the view normalisation appended."""
    return normalization if view == "none" else f"{normalization}; {VIEW_NOTES[view]}"


def _axis_joints(layout: str) -> dict[str, int]:
    index = get_layout(layout).joint_index
    out = {}
    for role, names in _AXIS_JOINTS.items():
        hit = [index[n] for n in names if n in index]
        if not hit:
            raise ValueError(f"layout {layout} has none of the joints {names}: no body-centred view")
        out[role] = hit[0]
    return out


def view_rotation(joints: np.ndarray, view: str, layout: str = NTU25.name) -> np.ndarray:
    """The rotation that turns a sample into its body-centred view (as the 2s-AGCN
    `pre_normalization` family of reference pipelines does, there from one frame).

    joints: float [T, S, V, 3] in `layout` (metres, y up, empty slot-frames all zero);
    the body axes are averaged over actor 1's first VIEW_FRAMES present frames (one
    Kinect frame is noisy): up = SpineShoulder - SpineBase (Kinect v1: ShoulderCenter -
    HipCenter), lateral = (ShoulderRight - ShoulderLeft) + (HipRight - HipLeft). view
    "yaw": a rotation about y taking lateral's x-z part to +x; "full": rows (lateral
    orthogonalised to up, up, lateral x up), so up -> +y and lateral -> +x. A person
    facing a Kinect (right side at +x in camera space) is left nearly unchanged. Returns
    float64 [3, 3] R (apply as p' = R p); the identity for "none" or when the axes are
    degenerate (zero length).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    eye = np.eye(3)
    if view == "none":
        return eye
    present = np.flatnonzero((joints[:, 0] != 0).any(axis=(1, 2)))[:VIEW_FRAMES]
    if present.size == 0:
        return eye
    f = joints[present, 0].astype(np.float64)  # [n, V, 3]
    j = _axis_joints(layout)
    up = (f[:, j["top"]] - f[:, j["base"]]).mean(0)
    lat = (f[:, j["shoulder_r"]] - f[:, j["shoulder_l"]] + f[:, j["hip_r"]] - f[:, j["hip_l"]]).mean(0)
    if view == "yaw":
        up = np.array([0.0, 1.0, 0.0])
    nu = np.linalg.norm(up)
    if nu < 1e-6:
        return eye
    up = up / nu
    lat = lat - (lat @ up) * up
    nl = np.linalg.norm(lat)
    if nl < 1e-6:
        return eye
    lat = lat / nl
    return np.stack([lat, up, np.cross(lat, up)])


def rotate_view(joints: np.ndarray, view: str, layout: str = NTU25.name) -> np.ndarray:
    """joints float32 [T, S, V, 3] (centred, in `layout`) -> the same turned by
    `view_rotation` about the origin; empty slot-frames stay exactly zero."""
    r = view_rotation(joints, view, layout)
    if view == "none" or np.array_equal(r, np.eye(3)):
        return joints
    empty = ~(joints != 0).any(axis=-1).any(axis=-1)  # [T, S]
    out = (joints.astype(np.float64) @ r.T).astype(joints.dtype)
    out[empty] = 0
    return np.ascontiguousarray(out, dtype=np.float32)
