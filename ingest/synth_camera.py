"""Synthetic Kinect v2 cameras: poses around the stage, projection, joint orientations.

World frame: metres, y up, floor at y = 0, the stage centre at the origin. A camera at
azimuth phi stands at Ry(phi) (0, h, -D) and looks at the stage (its +z axis points
towards the origin, tilted down by a few degrees); camera space is x, y up, z depth, as
in the real files. Like NTU, camera 1 is in the middle (0 deg) and cameras 2 and 3 at
-45 and +45 deg; a performer faces camera 2 in odd replications and camera 3 in even
ones, so camera 1 always sees 45 deg views and cameras 2/3 see front and side views.

Pixel coordinates use a pinhole model fitted on the real fixture
S001C001P001R001A001.skeleton (depth 512x424: f 366.4, centre (256.3, 208.5); colour
1920x1080: f 1048/1056, centre (976.4, 567.3); residuals below 2.3 px there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slim.ingest.synth_skeleton import axis_rot

CAMERA_AZIMUTH_DEG = {1: 0.0, 2: -45.0, 3: 45.0}
DEPTH = (366.43, -366.52, 256.34, 208.49)   # fx, fy, cx, cy (y flips: pixels go down)
COLOR = (1048.0, -1056.4, 976.37, 567.31)


@dataclass(frozen=True)
class Camera:
    """`axes` [3, 3]: columns are the camera's x, y, z axes in world; `pos` [3] metres."""

    axes: np.ndarray
    pos: np.ndarray

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] -> camera space [..., 3] (metres)."""
        return (points - self.pos) @ self.axes

    def rotations_to_camera(self, rot: np.ndarray) -> np.ndarray:
        """World-frame rotations [..., 3, 3] -> the same rotations seen in camera space."""
        return self.axes.T @ rot


def make_setup_cameras(rng: np.random.Generator) -> dict[int, Camera]:
    """The three cameras of one setup: shared height U[0.8, 1.2] m and distance
    U[3.1, 3.8] m, each with +-3 deg azimuth and 0-8 deg downward tilt jitter."""
    height, dist = rng.uniform(0.8, 1.2), rng.uniform(3.1, 3.8)
    cams = {}
    for cam_id, az in CAMERA_AZIMUTH_DEG.items():
        phi = np.deg2rad(az + rng.uniform(-3, 3))
        yaw = axis_rot("y", phi)[0]
        axes = yaw @ axis_rot("x", np.deg2rad(rng.uniform(0, 8)))[0]
        pos = yaw @ np.array([0.0, height, -dist * rng.uniform(0.97, 1.03)])
        cams[cam_id] = Camera(axes=axes, pos=pos)
    return cams


def project(xyz: np.ndarray) -> np.ndarray:
    """Camera-space points [..., 3] (metres) -> [..., 4] pixels (depthX, depthY,
    colorX, colorY)."""
    u = xyz[..., 0] / xyz[..., 2]
    v = xyz[..., 1] / xyz[..., 2]
    return np.stack([DEPTH[0] * u + DEPTH[2], DEPTH[1] * v + DEPTH[3],
                     COLOR[0] * u + COLOR[2], COLOR[1] * v + COLOR[3]], axis=-1)


def quaternions(rot: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] -> unit quaternions [..., 4] (w, x, y, z), w >= 0.

    Uses the largest of the four diagonal combinations for numerical stability.
    """
    m = rot
    t = np.stack([1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2],
                  1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], axis=-1)
    k = t.argmax(axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(t, k[..., None], -1)[..., 0], 1e-12)) * 2
    a, b, c = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    d, e, f = m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1]
    cand = np.stack([
        np.stack([s * s / 4, a, b, c], -1),
        np.stack([a, s * s / 4, d, e], -1),
        np.stack([b, d, s * s / 4, f], -1),
        np.stack([c, e, f, s * s / 4], -1),
    ], axis=-2)
    q = np.take_along_axis(cand, k[..., None, None], -2)[..., 0, :] / s[..., None]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return q * np.where(q[..., :1] < 0, -1.0, 1.0)
