"""The reference NTU preprocessing (CTR-GCN `get_raw_denoised_data.py`, consumed by MAMP
and SLiM), rule for rule; PROTOCOLS.md lists the rules and the quirks we keep on purpose.

Bodies -> denoise (only files with >= 2 bodyIDs) -> two actor slots -> drop frames where
both slots are empty. Centering is in `center.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slim.ingest.ntu_reader import Body

NOISE_LEN = 11          # a body present in <= 11 frames is noise
NOISE_SPREAD = 0.8      # a frame is noisy when x-spread > 0.8 * y-spread
NOISE_SPREAD_RATIO = 0.69754  # a body with >= this ratio of noisy frames is noise


@dataclass
class Actors:
    """joints: float32 [T, S, 25, 3] with S = 1 or 2 actor slots (an empty slot-frame is
    all zeros); notes: what denoising did, for the card."""
    joints: np.ndarray
    notes: list[str] = field(default_factory=list)


def motion(joints: np.ndarray) -> np.float32:
    """Sum over x, y, z of the variance of joints float32 [n, 25, 3] (float32, as the
    reference computes it)."""
    return np.sum(np.var(joints.reshape(-1, 3), axis=0))


def noisy_frames(joints: np.ndarray) -> np.ndarray:
    """bool [n]: frames of joints [n, 25, 3] whose x-spread exceeds 0.8 y-spread."""
    x, y = joints[..., 0], joints[..., 1]
    spread_x = x.max(axis=1) - x.min(axis=1)
    spread_y = y.max(axis=1) - y.min(axis=1)
    return ~(spread_x <= np.float32(NOISE_SPREAD) * spread_y)


def denoise(bodies: list[Body], notes: list[str]) -> list[Body]:
    """Reference denoising of >= 2 bodies: by length, then by spread (never dropping the
    last body), then sorted by motion, descending (stable: ties keep file order)."""
    mot = {b.body_id: motion(b.joints) for b in bodies}
    kept = [b for b in bodies if len(b.frames) > NOISE_LEN]
    for b in bodies:
        if len(b.frames) <= NOISE_LEN:
            notes.append(f"body {b.body_id}: dropped, {len(b.frames)} frames <= {NOISE_LEN}")
    if not kept:
        # The reference crashes here; keeping the longest body loses the least.
        longest = max(bodies, key=lambda b: len(b.frames))
        notes.append(f"every body has <= {NOISE_LEN} frames: kept the longest, {longest.body_id}")
        return [longest]
    if len(kept) == 1:
        return kept
    survivors = list(kept)
    for b in kept:
        if len(survivors) == 1:
            break
        noisy = noisy_frames(b.joints)
        n_noise = int(noisy.sum())
        if n_noise == 0:
            continue
        ratio = n_noise / len(b.frames)
        if ratio >= NOISE_SPREAD_RATIO:
            survivors.remove(b)
            notes.append(f"body {b.body_id}: dropped, noisy-frame ratio {ratio:.3f}")
        else:
            mot[b.body_id] = min(mot[b.body_id], motion(b.joints[~noisy]))
    if len(survivors) == 1:
        return survivors
    return sorted(survivors, key=lambda b: mot[b.body_id], reverse=True)


def _place(slot: np.ndarray, body: Body) -> None:
    # The reference places a body's k-th appearance at first + k (it assumes no gaps).
    start = int(body.frames[0])
    slot[start:start + len(body.frames)] = body.joints


def assemble(bodies: list[Body], num_frames: int) -> Actors:
    """Bodies of one file (first-appearance order) -> two actor slots, reference rules.

    num_frames: frames that have at least one body. Returns joints [T, S, 25, 3].
    """
    notes: list[str] = []
    if len(bodies) == 1:
        # Single-body files skip denoising and empty-frame removal (reference).
        out = np.zeros((num_frames, 1, 25, 3), np.float32)
        _place(out[:, 0], bodies[0])
        return Actors(out, notes)
    ordered = denoise(bodies, notes)
    if len(ordered) == 1:
        out = np.zeros((num_frames, 1, 25, 3), np.float32)
        _place(out[:, 0], ordered[0])
    else:
        out = np.zeros((num_frames, 2, 25, 3), np.float32)
        first = ordered[0]
        _place(out[:, 0], first)
        s1, e1 = int(first.frames[0]), int(first.frames[0]) + len(first.frames) - 1
        s2, e2 = 0, 0   # the reference's actor-2 interval starts as [0, 0]
        for b in ordered[1:]:
            s, e = int(b.frames[0]), int(b.frames[0]) + len(b.frames) - 1
            if min(e1, e) - max(s1, s) <= 0:
                _place(out[:, 0], b)
                s1, e1 = min(s, s1), max(e, e1)
            elif min(e2, e) - max(s2, s) <= 0:
                _place(out[:, 1], b)
                s2, e2 = min(s, s2), max(e, e2)
            else:
                notes.append(f"body {b.body_id}: discarded, overlaps both actors")
    # A frame is empty when the sum of its coordinates is 0 (float32 sum, as reference).
    flat = out.reshape(num_frames, -1)
    keep = flat.sum(axis=1) != 0
    if not keep.all():
        notes.append(f"{int((~keep).sum())} empty frames removed")
        out = out[keep]
    return Actors(out, notes)
