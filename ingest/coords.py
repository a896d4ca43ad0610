"""Coordinates no sensor can produce: one rule for every reader.

A Kinect v2 (NTU RGB+D, PKU-MMD) measures depth up to 8 m (4.5 m reliably; Microsoft's
Kinect for Windows v2 specification), so camera-space joint coordinates are a few metres.
`MAX_ABS_M` = 100 m is far outside anything real (12x the sensor's range) yet well below
anything that could be a unit mix-up of real data (millimetres would be ~1,000-8,000),
so a coordinate beyond it is a corrupted value, not a far-away person. Such values,
`inf`/`-inf`, and finite float64 values that overflow float32 (|x| > 3.4e38, e.g.
`1.5E+39`) are all made NaN at read time, so that they follow the NaN rules downstream
(the reference's `remove_nan_frames`: frames with NaN are dropped; a file left with no
frame is skipped), and each reader reports how many body-frames it changed.
"""
from __future__ import annotations

import numpy as np

#: Largest plausible |coordinate| in metres (see the module docstring for the source).
MAX_ABS_M = 100.0


def to_float32_finite(xyz: np.ndarray) -> tuple[np.ndarray, int, int]:
    """float64 (or float32) coordinates in metres, any shape [..., 25, 3] -> (float32
    copy where every infinite, float32-overflowing or |x| > MAX_ABS_M value is NaN,
    number of body-frames [...] that had a NaN already, number of body-frames that had
    such an impossible value). A body-frame is one [25, 3] block."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(xyz).astype(np.float32)
        bad = ~np.isfinite(out)
        was_nan = np.isnan(out)
        impossible = (bad & ~was_nan) | (np.abs(out) > MAX_ABS_M)
    out[impossible] = np.nan
    n_nan = int(was_nan.any(axis=(-2, -1)).sum()) if out.ndim >= 2 else int(was_nan.any())
    n_bad = int(impossible.any(axis=(-2, -1)).sum()) if out.ndim >= 2 else int(impossible.any())
    return out, n_nan, n_bad


def describe(n_nan: int, n_bad: int, unit: str = "body-frames") -> list[str]:
    """The warnings a reader records for the counts of `to_float32_finite`."""
    out = []
    if n_nan:
        out.append(f"{n_nan} {unit} with NaN coordinates")
    if n_bad:
        out.append(f"{n_bad} {unit} with infinite or impossible coordinates (inf, overflowing "
                   f"float32, or |x| > {MAX_ABS_M:g} m), read as NaN")
    return out
