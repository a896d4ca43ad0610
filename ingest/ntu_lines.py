"""Fast path of the NTU reader for well-formed files (the ~all real ones).

The token walk in `ntu_reader` splits every one of a file's ~64k tokens into a bytes
object and converts the x, y, z ones one by one in Python; that was ~70 % of ingest's CPU.
Here only the small header structure is walked in Python, line by line (frame count,
body counts, body header, joint count); the x y z of every joint line are cut out of the
raw bytes by numpy index arithmetic and converted by one C call (`np.fromstring`, the
same correctly rounded strtod as `float()`, so float32 of the result is bit-identical).

Equivalence with the token walk: the file must have single spaces between tokens, no
leading/trailing spaces, no tabs, and every line the token count its role implies (1 for
counts, 10 for a body header, 12 for a joint line), nothing after the last frame. Then
the token stream of the token walk lines up with these lines exactly. Anything else (and
every error) returns None and the caller uses the token walk, which gives the precise
error message or warning.
"""
from __future__ import annotations

import warnings

import numpy as np

NUM_JOINTS = 25
HEADER_SPACES = 9           # 10 values per body header line
JOINT_SPACES = 11           # 12 values per joint line
_J = np.arange(NUM_JOINTS)


def parse_lines(data: bytes):
    """Returns (header_frames, valid_frames, many, ids {bodyID: key}, body_key [n],
    frame_of [n], xyz float64 [n * 25 * 3]) for n body-frames, or None when the file is
    not in the plain layout (see module docstring)."""
    if b"\t" in data or data[:1] == b" " or data[-1:] == b" ":
        return None
    try:
        return _walk(data)
    except (ValueError, IndexError, DeprecationWarning):
        return None


def _walk(data: bytes):
    b = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(b == 10)
    if data[-1:] != b"\n":
        nl = np.append(nl, len(data))       # missing final newline
    ends = nl.tolist()                        # line l is data[ends[l-1]+1 : ends[l]]
    n_lines = len(ends)

    def line(k: int) -> bytes:
        return data[ends[k - 1] + 1 if k else 0:ends[k]]

    header_frames = int(line(0))
    if header_frames < 0:
        return None
    blocks: list[int] = []      # line index of the first joint line of each body-frame
    body_key: list[int] = []
    frame_of: list[int] = []
    ids: dict[int, int] = {}
    k, valid, many = 1, 0, 0
    for _ in range(header_frames):
        nb = int(line(k))
        k += 1
        if nb <= 0:
            if nb < 0:
                return None
            continue
        many += nb > 2
        for _ in range(nb):
            bid = int(line(k).split(b" ", 1)[0])
            if int(line(k + 1)) != NUM_JOINTS or k + 1 + NUM_JOINTS >= n_lines:
                return None
            blocks.append(k + 2)
            body_key.append(ids.setdefault(bid, len(ids)))
            frame_of.append(valid)
            k += 2 + NUM_JOINTS
        valid += 1
    if not blocks or (k < n_lines and data[ends[k - 1] + 1:].strip()):
        return None
    # Spaces per line; with no double, leading or trailing spaces, tokens = spaces + 1.
    # (Checked on the space positions: `b"  " in data` scans are slow on 280 KB.)
    sp = np.flatnonzero(b == 32)
    after, before = b[sp + 1], b[sp - 1]
    if ((after == 32) | (after == 10) | (after == 13) | (before == 10)).any():
        return None
    per_line = np.diff(np.searchsorted(sp, nl), prepend=0)
    first = np.asarray(blocks)
    joint_lines = (first[:, None] + _J).ravel()
    if (len(sp) != len(first) * (HEADER_SPACES + NUM_JOINTS * JOINT_SPACES)
            or (per_line[first - 2] != HEADER_SPACES).any()
            or (per_line[joint_lines] != JOINT_SPACES).any()):
        return None
    # Window of each joint line: its start up to and including its third space, i.e.
    # "x y z "; all windows gathered into one buffer and converted at once.
    start = np.concatenate(([0], nl[:-1] + 1))[joint_lines]
    stop = sp[np.searchsorted(sp, start) + 2] + 1
    size = stop - start
    idx = np.arange(int(size.sum())) + np.repeat(start - (np.cumsum(size) - size), size)
    with warnings.catch_warnings():
        # Text-mode fromstring is fast C; older numpy warns where newer raises.
        warnings.simplefilter("error", DeprecationWarning)
        xyz = np.fromstring(b[idx].tobytes(), dtype=np.float64, sep=" ")
    if xyz.size != 3 * len(joint_lines):
        return None
    return header_frames, valid, many, ids, body_key, frame_of, xyz
