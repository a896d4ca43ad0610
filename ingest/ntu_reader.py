"""NTU RGB+D `.skeleton` reader (format facts in FORMATS.md).

Two walks, same result. Well-formed files take the line walk of `ntu_lines` (header
structure in Python, x y z converted in one C call). Any other file takes the token walk
here: the file is split into tokens once, the header structure walked over them, and the
x, y, z tokens picked by one index array; it is also the one that words errors and
warnings. Only the bodyID is parsed as an exact int (as float64 two bodies of one file
can collide).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np

from slim.ingest.coords import describe, to_float32_finite
from slim.ingest.ntu_lines import parse_lines
from slim.ingest.topology import NTU25

# NTU-format data: the ntu25 layout.
NUM_JOINTS = NTU25.num_joints

JOINT_VALUES = 12   # x y z depthX depthY colorX colorY oW oX oY oZ trackingState
BODY_HEADER = 10    # bodyID clippedEdges ... trackingState
# Characters a well-formed file may contain; anything else means binary or garbage.
_ALLOWED = b"0123456789.+-eE \t\r\nNnaAiIfF"
# Offsets of x, y, z inside a body's joint block of 25 x 12 tokens.
_XYZ = (np.arange(NUM_JOINTS)[:, None] * JOINT_VALUES + np.arange(3)).ravel()


class BadFile(Exception):
    """A raw file that cannot be ingested; the message is the reason shown to users."""


@dataclass
class Body:
    """One bodyID of a file, its appearances in file order.

    frames: int64 [n] index of each appearance among the non-empty frames (0-based);
    joints: float32 [n, 25, 3] camera-space metres.
    """
    body_id: int
    frames: np.ndarray
    joints: np.ndarray


@dataclass
class NtuSkeleton:
    """Parsed file: `bodies` in order of first appearance; `num_frames` counts the frames
    that have at least one body (0-body frames are dropped, as the reference does)."""
    bodies: list[Body]
    num_frames: int
    header_frames: int
    warnings: list[str] = field(default_factory=list)


def _int(tok: list[bytes], p: int, what: str) -> int:
    try:
        return int(tok[p])
    except IndexError:
        raise BadFile(f"truncated: file ends where the {what} was expected") from None
    except ValueError:
        raise BadFile(f"non-number token {tok[p][:20]!r} where the {what} was expected "
                      f"(token {p})") from None


def parse_ntu(data: bytes) -> NtuSkeleton:
    """Parse the bytes of one `.skeleton` file. Raises BadFile with the reason."""
    if not data.strip():
        raise BadFile("empty file")
    if b"\0" in data or not data.isascii() or data.translate(None, _ALLOWED):
        bad = data.translate(None, _ALLOWED)[:10]
        kind = "binary file (not text)" if (b"\0" in data or not data.isascii()) else \
            f"non-number characters {bad!r}"
        raise BadFile(kind)
    fast = parse_lines(data)
    if fast is not None:
        header_frames, valid, many, ids, body_key, frame_of, xyz = fast
        return _build(header_frames, valid, many, ids, body_key, frame_of, xyz, [])
    return _parse_tokens(data)


def _parse_tokens(data: bytes) -> NtuSkeleton:
    """The token walk: any whitespace layout, precise errors and warnings."""
    tok = data.split()
    n_tok = len(tok)
    header_frames = _int(tok, 0, "frame count")
    if header_frames < 0:
        raise BadFile(f"negative frame count {header_frames}")
    warnings: list[str] = []
    starts: list[int] = []      # token index of each body-frame's joint block
    body_key: list[int] = []    # index into ids of each body-frame
    frame_of: list[int] = []    # valid-frame index of each body-frame
    ids: dict[int, int] = {}
    p, valid, many = 1, 0, 0
    for f in range(header_frames):
        nb = _int(tok, p, f"body count of frame {f + 1}")
        p += 1
        if nb < 0:
            raise BadFile(f"negative body count {nb} in frame {f + 1}")
        if nb == 0:
            continue
        if nb > 2:
            many += 1
        for _ in range(nb):
            bid = _int(tok, p, f"bodyID in frame {f + 1}")
            nj = _int(tok, p + BODY_HEADER, f"joint count in frame {f + 1}")
            if nj != NUM_JOINTS:
                raise BadFile(f"wrong joint count {nj} in frame {f + 1} (expected {NUM_JOINTS})")
            p += BODY_HEADER + 1
            if p + NUM_JOINTS * JOINT_VALUES > n_tok:
                raise BadFile(f"truncated in frame {f + 1} of {header_frames}")
            starts.append(p)
            body_key.append(ids.setdefault(bid, len(ids)))
            frame_of.append(valid)
            p += NUM_JOINTS * JOINT_VALUES
        valid += 1
    if p < n_tok:
        warnings.append(f"{n_tok - p} extra tokens after the last frame (ignored)")
    if not starts:
        raise BadFile("no body in any frame")
    idx = (np.asarray(starts)[:, None] + _XYZ).ravel()
    sel = operator.itemgetter(*idx.tolist())(tok)
    try:
        xyz = np.fromiter(map(float, sel), dtype=np.float64, count=len(sel))
    except ValueError:
        bad = next(t for t in sel if not _is_float(t))
        raise BadFile(f"non-number token {bad[:20]!r} in a joint line") from None
    return _build(header_frames, valid, many, ids, body_key, frame_of, xyz, warnings)


def _build(header_frames: int, valid: int, many: int, ids: dict[int, int], body_key: list[int],
           frame_of: list[int], xyz: np.ndarray, warnings: list[str]) -> NtuSkeleton:
    """xyz float64 [n * 25 * 3] of n body-frames (file order) -> bodies + warnings.
    Infinite, float32-overflowing and impossible (|x| > 100 m) values become NaN here
    (`coords.to_float32_finite`), so they follow the NaN rules downstream."""
    if many:
        warnings.append(f"{many} frames with more than 2 bodies")
    xyz, n_nan, n_bad = to_float32_finite(xyz.reshape(-1, NUM_JOINTS, 3))
    warnings += describe(n_nan, n_bad)
    n_zero = int((xyz == 0).all(axis=2).sum())
    if n_zero:
        warnings.append(f"{n_zero} all-zero joint lines")
    key = np.asarray(body_key)
    frames = np.asarray(frame_of, dtype=np.int64)
    bodies = []
    for bid, k in ids.items():
        sel_k = np.flatnonzero(key == k)
        bodies.append(Body(bid, frames[sel_k], xyz[sel_k]))
    return NtuSkeleton(bodies, valid, header_frames, warnings)


def _is_float(t: bytes) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False
