"""What one Kinect records of a performance, written as an NTU `.skeleton` text file.

Sensor model (per file, from the camera's own generator):
- jitter N(0, 6 mm) per axis on every joint (about 1 cm in 3D);
- inferred joints (trackingState 1): runs of frames where a joint is inferred, about 12 %
  of frames for hands, wrists, feet and ankles, 2 % for the rest (the real fixture has
  14 % inferred overall); inferred joints get another N(0, 3 cm) error;
- pixel coordinates are the projection of the noisy 3D joint; joint orientations are
  the bone rotations in camera space, `0 0 0 0` for end joints as in real files.

Defects, at rates chosen to resemble what users of NTU report:
- 6 % of files: the body is not tracked yet in the first 1-6 frames (frames with 0
  bodies); 3 %: lost in the last 1-4 frames;
- single-person files: 10 % get a spurious noise body for 2-11 frames (half of them
  spread wide in x, so the x-extent rule also flags them), 2 % a long wide noise body
  (15-40 frames) that only the x-extent rule removes, 3 % a tracking-id switch (the
  person is re-acquired mid-file as a new bodyID, two non-overlapping bodies);
- two-person files: 20 % the second person is tracked 3-25 frames late, 5 % lost
  3-15 frames early.

Text follows the real files: CRLF, `%.7G` numbers (about 7 significant digits, bare
`0`, capital-E exponents for tiny values), bodyID = 2^56 + a small integer, the bodies
of one file differing only in the last digits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slim.ingest.synth_camera import Camera, project, quaternions
from slim.ingest.topology import NTU25

# NTU-format data: the ntu25 layout.
NUM_JOINTS = NTU25.num_joints
PARENTS = NTU25.parents

BODY_ID_BASE = 2 ** 56
JITTER_M = 0.006
INFERRED_ERR_M = 0.03
END_JOINTS = (3, 15, 19, 21, 22, 23, 24)
_EXTREMITIES = (6, 7, 10, 11, 14, 15, 18, 19, 21, 22, 23, 24)
#: Per-joint z threshold on a unit-variance smoothed noise: 1.175 -> 12 %, 2.054 -> 2 %.
_INFER_THRESHOLD = np.where(np.isin(np.arange(NUM_JOINTS), _EXTREMITIES), 1.175, 2.054)
_NUM = "%.7G"
_JOINT_LINE = " ".join([_NUM] * 11) + " %d"
_BODY_TAIL = "%d %d %d %d %d %d " + _NUM + " " + _NUM + " %d"
_CRLF = "\r\n"


@dataclass
class Track:
    """One bodyID in one file: present in frames `first .. first + n - 1`.

    `values` float64 [n, 309]: per frame the 9 body-line values after the bodyID, then
    25 x 12 joint values (x y z metres, depthX depthY colorX colorY pixels, orientation
    w x y z, trackingState).
    """

    body_id: int
    first: int
    values: np.ndarray

    @property
    def last(self) -> int:
        return self.first + len(self.values) - 1


def _runs(T: int, threshold: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """bool [T, V]: True where smoothed noise exceeds the joint's threshold (runs of
    frames rather than isolated flickers)."""
    w = 7
    noise = rng.standard_normal((T + w - 1, NUM_JOINTS))
    c = np.cumsum(np.vstack([np.zeros((1, NUM_JOINTS)), noise]), axis=0)
    smooth = (c[w:] - c[:-w]) / np.sqrt(w)
    return smooth > threshold


def _body_line(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """joints [n, V, 3] camera space -> [n, 9] body-line values after the bodyID
    (clippedEdges, handLeftConfidence, handLeftState, handRightConfidence,
    handRightState, isRestricted, leanX, leanY, trackingState)."""
    n = len(joints)
    px = project(joints)
    clipped = ((px[..., 0] > 512).any(-1) * 1 + (px[..., 0] < 0).any(-1) * 2
               + (px[..., 1] < 0).any(-1) * 4 + (px[..., 1] > 424).any(-1) * 8)
    hands = []
    for _ in range(2):
        state = np.full(n, rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
        lost = rng.random(n) < 0.1
        state[lost] = 0
        hands += [np.where(lost, 0, 1), state]
    spine = joints[:, 20] - joints[:, 0]
    spine = spine / np.linalg.norm(spine, axis=-1, keepdims=True)
    lean_x, lean_y = np.clip(spine[:, 0] * 2, -1, 1), np.clip(-spine[:, 2] * 2, -1, 1)
    return np.column_stack([clipped, *hands, np.zeros(n), lean_x, lean_y, np.full(n, 2)])


def observe(joints: np.ndarray, rot: np.ndarray, cam: Camera,
            rng: np.random.Generator) -> np.ndarray:
    """A camera's noisy recording of one body.

    joints [T, V, 3] world metres, rot [T, V, 3, 3] world bone rotations -> values
    [T, 309] (see Track).
    """
    T = len(joints)
    xyz = cam.to_camera(joints)
    inferred = _runs(T, _INFER_THRESHOLD, rng)
    xyz = xyz + rng.normal(0.0, JITTER_M, xyz.shape)
    xyz = xyz + inferred[..., None] * rng.normal(0.0, INFERRED_ERR_M, xyz.shape)
    # Kinect reports each joint's orientation as that of the bone arriving at it.
    parent = np.array([p if p >= 0 else 0 for p in PARENTS])
    quat = quaternions(cam.rotations_to_camera(rot[:, parent]))
    quat[:, END_JOINTS] = 0.0
    per_joint = np.concatenate([xyz, project(xyz), quat, np.where(inferred, 1.0, 2.0)[..., None]], -1)
    return np.concatenate([_body_line(xyz, rng), per_joint.reshape(T, -1)], axis=1)


def noise_body(T: int, cam_xyz_centre: np.ndarray, wide: bool, rng: np.random.Generator) -> np.ndarray:
    """A spurious body (a chair, a reflection): values [T, 309] around a camera-space
    centre [3] (metres); `wide` spreads it over ~1.2 m in x and ~0.3 m in y."""
    spread = np.array([0.6, 0.15, 0.1]) if wide else np.array([0.15, 0.5, 0.1])
    shape = rng.uniform(-1, 1, (NUM_JOINTS, 3)) * spread
    xyz = cam_xyz_centre + shape + rng.normal(0.0, 0.02, (T, NUM_JOINTS, 3))
    quat = rng.normal(size=(T, NUM_JOINTS, 4))
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    quat[:, END_JOINTS] = 0.0
    state = np.where(rng.random((T, NUM_JOINTS)) < 0.6, 1.0, 2.0)
    per_joint = np.concatenate([xyz, project(xyz), quat, state[..., None]], -1)
    return np.concatenate([_body_line(xyz, rng), per_joint.reshape(T, -1)], axis=1)


def record_file(bodies: list[tuple[np.ndarray, np.ndarray]], cam: Camera,
                rng: np.random.Generator) -> tuple[list[Track], int]:
    """Tracks of one camera file, with the defects of the module docstring.

    bodies: per performer (joints [T, V, 3] world metres, rot [T, V, 3, 3]).
    Returns (tracks, number of frames T).
    """
    T = len(bodies[0][0])
    base = BODY_ID_BASE + int(rng.integers(1000, 60000))
    span = [[0, T] for _ in bodies]  # [start, stop) of tracking per performer
    if rng.random() < 0.06:
        span[0][0] = int(rng.integers(1, 7))
    if rng.random() < 0.03:
        span[0][1] = T - int(rng.integers(1, 5))
    if len(bodies) == 2:
        span[1][0] = max(span[1][0], span[0][0])
        if rng.random() < 0.20:
            span[1][0] = int(rng.integers(3, 26))
        if rng.random() < 0.05:
            span[1][1] = T - int(rng.integers(3, 16))
    tracks = []
    for k, ((joints, rot), (a, b)) in enumerate(zip(bodies, span)):
        values = observe(joints[a:b], rot[a:b], cam, rng)
        tracks.append(Track(base + k * int(rng.integers(1, 6)), a, values))
    if len(bodies) == 1:
        tracks += _single_person_defects(tracks, T, rng)
    return tracks, T


def _single_person_defects(tracks: list[Track], T: int, rng: np.random.Generator) -> list[Track]:
    """Extra tracks (and an id switch applied in place) for a one-person file."""
    extra = []
    person = tracks[0]
    n = len(person.values)
    if rng.random() < 0.03 and n >= 40:
        cut = int(rng.integers(15, n - 15))
        extra.append(Track(person.body_id + int(rng.integers(1, 9)), person.first + cut, person.values[cut:]))
        person.values = person.values[:cut]
    centre = np.array([rng.uniform(-1.2, 1.2), rng.uniform(-0.5, 0.6), rng.uniform(2.5, 4.5)])
    u = rng.random()
    if u < 0.10:
        length = int(rng.integers(2, 12))
        start = int(rng.integers(0, T - length + 1))
        extra.append(Track(person.body_id - int(rng.integers(1, 9)), start,
                           noise_body(length, centre, bool(rng.random() < 0.5), rng)))
    elif u < 0.12:
        length = min(T, int(rng.integers(15, 41)))
        start = int(rng.integers(0, T - length + 1))
        extra.append(Track(person.body_id - int(rng.integers(1, 9)), start,
                           noise_body(length, centre, True, rng)))
    return extra


def format_file(tracks: list[Track], T: int) -> bytes:
    """The `.skeleton` text of a file: frame count, then per frame the body count and
    each present body (body line, `25`, 25 joint lines), CRLF line endings."""
    per_frame: list[list[str]] = [[] for _ in range(T)]
    for tr in tracks:
        head = f"{tr.body_id} {_BODY_TAIL}{_CRLF}25{_CRLF}"
        fmt = head + _CRLF.join([_JOINT_LINE] * NUM_JOINTS)
        # +0.0 turns -0.0 into 0.0 so zeros print as a bare `0` like the real files.
        for k, row in enumerate((tr.values + 0.0).tolist()):
            per_frame[tr.first + k].append(fmt % tuple(row))
    out = [str(T)]
    for chunks in per_frame:
        out.append(str(len(chunks)))
        out.extend(chunks)
    return (_CRLF.join(out) + _CRLF).encode("ascii")
