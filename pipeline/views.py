"""Temporal views (paper Appendix B): valid frames, global and local crop intervals, and
resampling a crop to a fixed number of frames.

Every interval is `(start, length)` in frames of the stored sequence. A crop of `length`
frames becomes `n` frames by uniform sampling (centre of each of n equal bins) when
length >= n, and by linear interpolation between neighbouring frames (first and last
output frames = first and last crop frames) when length < n. All functions work on
many intervals at once; nothing here loops over views.
"""
from __future__ import annotations

import numpy as np


def frames_present(x: np.ndarray) -> np.ndarray:
    """Which frames hold a skeleton (an absent person is stored as zeros).

    x: [..., T, V, C] -> bool [..., T].
    """
    return np.any(x != 0, axis=(-1, -2))


def valid_span(present: np.ndarray) -> tuple[int, int]:
    """(first, length) of the span from the first to the last present frame.

    present: bool [T]. A sequence with no present frame gives (0, T) so that callers
    still get well-formed (all-zero) views.
    """
    idx = np.flatnonzero(present)
    if idx.size == 0:
        return 0, int(present.shape[0])
    return int(idx[0]), int(idx[-1] - idx[0] + 1)


def resample_index(start: np.ndarray, length: np.ndarray, n: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame indices and weights that turn crops into n frames.

    start, length: int [K] (frames, length >= 1) -> lo, hi: int64 [K, n] (frames, inside
    [start, start + length - 1]) and w: float32 [K, n] in [0, 1); output frame k of crop
    i is (1 - w) * x[lo] + w * x[hi].
    """
    start = np.asarray(start, dtype=np.int64)[:, None]
    length = np.asarray(length, dtype=np.int64)[:, None]
    k = np.arange(n, dtype=np.float64)[None, :]
    # Long crops: pick the frame at the centre of each of n equal bins (no blending).
    pick = np.floor((k + 0.5) * length / n)
    # Short crops: positions spread from the first to the last frame, then blend.
    pos = k * (length - 1) / max(n - 1, 1)
    up = length < n
    pos = np.where(up, pos, pick)
    lo = np.floor(pos)
    w = np.where(up, pos - lo, 0.0).astype(np.float32)
    lo = lo.astype(np.int64)
    hi = np.minimum(lo + 1, length - 1)
    return start + lo, start + hi, w


def gather(flat: np.ndarray, lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Linear-interpolated frames from a flat frame array.

    flat: [R, V, C] (all sequences concatenated), lo, hi: int [K, n] rows of flat,
    w: [K, n] -> [K, n, V, C].
    """
    a = flat[lo]
    up = np.flatnonzero(np.any(w, axis=-1))  # crops shorter than n: blend with hi
    if up.size == 0:
        return a
    b = flat[hi[up]]
    wu = w[up][..., None, None].astype(flat.dtype)
    au = a[up]
    a[up] = au + wu * (b - au)
    return a


def resample(x: np.ndarray, start: int, length: int, n: int) -> np.ndarray:
    """One crop of one sequence resampled to n frames.

    x: [T, ...] -> [n, ...]; the crop is frames [start, start + length).
    """
    lo, hi, w = resample_index(np.array([start]), np.array([length]), n)
    a, b = x[lo[0]], x[hi[0]]
    w = w[0].reshape((n,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    return a + w * (b - a)


def sample_global_intervals(valid_len: np.ndarray, ratio: tuple[float, float],
                            rng: np.random.Generator, views: int = 2
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Random global crops covering ratio U[lo, hi] of each sequence's valid frames.

    valid_len: int [B] (frames) -> start, length: int64 [B, views], start relative to the
    first valid frame, 1 <= length <= valid_len, start + length <= valid_len.
    """
    valid_len = np.asarray(valid_len, dtype=np.int64)[:, None]
    r = rng.uniform(ratio[0], ratio[1], size=(valid_len.shape[0], views))
    length = np.clip(np.rint(r * valid_len), 1, valid_len).astype(np.int64)
    start = np.floor(rng.random(length.shape) * (valid_len - length + 1)).astype(np.int64)
    return start, length


def sample_local_intervals(anchor_start: np.ndarray, anchor_len: np.ndarray, count: int,
                           ratio: tuple[float, float], rng: np.random.Generator
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` crops inside each anchor interval, each ratio U[lo, hi] of the anchor.

    anchor_start, anchor_len: int [B, A] (frames) -> start, length: int64 [B, A * count]
    (anchor-major: crops of anchor 0 first) and anchor: int64 [A * count], the anchor
    each crop lies in.
    """
    b, a = anchor_len.shape
    s0 = np.repeat(np.asarray(anchor_start, dtype=np.int64), count, axis=1)
    la = np.repeat(np.asarray(anchor_len, dtype=np.int64), count, axis=1)
    r = rng.uniform(ratio[0], ratio[1], size=(b, a * count))
    length = np.clip(np.rint(r * la), 1, la).astype(np.int64)
    start = s0 + np.floor(rng.random(length.shape) * (la - length + 1)).astype(np.int64)
    return start, length, np.repeat(np.arange(a, dtype=np.int64), count)


def test_view(joints: np.ndarray, out_len: int = 64, crop: float = 0.95) -> np.ndarray:
    """The deterministic downstream transform: centre crop of `crop` of the valid frames
    (frames where any person is present), resampled to out_len frames.

    joints: float32 [T, M, V, C] (metres) -> float32 [M, out_len, V, C].
    """
    first, length = valid_span(frames_present(joints.transpose(1, 0, 2, 3)).any(axis=0))
    keep = int(min(max(round(crop * length), 1), length))
    start = first + (length - keep) // 2
    out = resample(joints, start, keep, out_len)
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3), dtype=np.float32)


# pytest would collect the name `test_view` wherever a test module imports it.
test_view.__test__ = False
