"""Skeleton-aware augmentations (paper Appendix D): rotation, mirroring and bone-aware
scaling, each drawn per view with its own probability.

All three are linear maps of a frame's joints, so a view's augmentation is one
[V*C, V*C] matrix: joints are mixed by J = S_scale @ P_mirror (per joint, same for
x, y, z) and coordinates by K = R @ F_mirror (per joint, same for every joint), i.e.
kron(J, K). Many views are augmented with one batched matmul; zeros (absent persons,
absent frames) stay zeros.

The batch transform uses the factored form of the same draws (`sample_augment_parts`):
the mirror permutation is folded into the frame gather (`mirror_source`), the joint map
S is multiplied only into views that were bone-scaled and the coordinate map K only
into views that were rotated or mirrored; `apply_augment` (any J, K) stays the general
path and the tests check that both agree.

The skeleton facts (tree, mirror pairs, groups) come from the data's layout
(slim.ingest.topology.Layout); every function takes it (default ntu25) and its
matrices are built once per layout (`operators(layout)`).
"""
from __future__ import annotations

import numpy as np
import torch

from functools import lru_cache

from slim.ingest.topology import NTU25, Layout

from .config import PipelineConfig


class LayoutOperators:
    """The fixed matrices of one layout's augmentations.

    ancestors: [V, V], A[j, k] = 1 when bone k (child k -> its parent) lies on the path
    root -> j (built parent-before-child, never in index order); bone_matrix: [V, V],
    bone_j = joint_j - joint_parent(j) (row of the root is zero); child_of: torch [V, V],
    C[k, w] = 1 where w is the parent of joint k (bone_matrix = I - C); mirror_runs: the
    mirror permutation as (dst, src, length) block copies.
    """

    def __init__(self, layout: Layout):
        v = layout.num_joints
        a = np.zeros((v, v))
        for j in layout.topo_order:
            p = layout.parents[j]
            if p >= 0:
                a[j] = a[p]
                a[j, j] = 1.0
        bone = np.eye(v)
        for j, p in enumerate(layout.parents):
            if p < 0:
                bone[j, j] = 0.0
            else:
                bone[j, p] = -1.0
        child_of = np.eye(v) - bone
        child_of[layout.root] = 0.0  # the root has no bone
        self.layout, self.num_joints = layout, v
        self.ancestors, self.bone_matrix = a, bone
        self.child_of = torch.from_numpy(child_of)
        self.mirror_runs = _runs(layout.mirror_perm)


@lru_cache(maxsize=None)
def operators(layout: Layout) -> LayoutOperators:
    """The (cached) LayoutOperators of `layout`."""
    return LayoutOperators(layout)


def rotation_matrices(alpha: np.ndarray, beta: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """R = Rz(gamma) @ Ry(beta) @ Rx(alpha) (Algorithm 2).

    alpha, beta, gamma: [N] (radians, about x, y (up), z) -> [N, 3, 3].
    """
    ca, sa = np.cos(alpha), np.sin(alpha)
    cb, sb = np.cos(beta), np.sin(beta)
    cg, sg = np.cos(gamma), np.sin(gamma)
    o, z = np.ones_like(ca), np.zeros_like(ca)
    rx = np.stack([o, z, z, z, ca, -sa, z, sa, ca], -1).reshape(-1, 3, 3)
    ry = np.stack([cb, z, sb, z, o, z, -sb, z, cb], -1).reshape(-1, 3, 3)
    rz = np.stack([cg, -sg, z, sg, cg, z, z, z, o], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def scaling_matrices(factors: np.ndarray, layout: Layout = NTU25) -> np.ndarray:
    """Joint-mixing matrices of bone-aware scaling (Algorithm 4).

    factors: [N, G] (one per semantic group of `layout`, in its order) -> [N, V, V]. Bone j
    (child j) is multiplied by its group's factor, keeping its direction; joints are
    rebuilt from the unchanged root trajectory, parent before child. Written as
    I + A diag(s - 1) B so that factors of exactly 1 give exactly the identity.
    """
    ops = operators(layout)
    v = ops.num_joints
    s = factors[:, layout.group_of_joint] - 1.0  # [N, V], per child joint
    # (A * s) @ B = a - a @ C with one [N * V, V] @ [V, V] product: each entry of a @ C
    # has at most one non-zero term (one child of w lies on the path to v), so this is
    # exact in any summation order. torch, not numpy: a product this size would start
    # OpenBLAS threads, which keep spinning (and burning CPU) after the call.
    a = torch.from_numpy((ops.ancestors[None] * s[:, None, :]).reshape(-1, v))
    sb = (a - a @ ops.child_of).numpy().reshape(-1, v, v)
    return np.eye(v) + sb


def mirror_matrices(flags: np.ndarray, layout: Layout = NTU25) -> tuple[np.ndarray, np.ndarray]:
    """Mirroring (Algorithm 3) as a joint permutation and an x reflection.

    flags: bool [N] -> P: [N, V, V] (x'[v] = x[mirror_perm[v]] where flagged),
    F: [N, 3, 3] (diag(-1, 1, 1) where flagged).
    """
    n = flags.shape[0]
    v = layout.num_joints
    perm = np.where(flags[:, None], layout.mirror_perm[None, :], np.arange(v)[None, :])
    p = np.zeros((n, v, v))
    p[np.arange(n)[:, None], np.arange(v)[None, :], perm] = 1.0
    f = np.tile(np.eye(3), (n, 1, 1))
    f[:, 0, 0] = np.where(flags, -1.0, 1.0)
    return p, f


def _draw(n: int, cfg: PipelineConfig, rng: np.random.Generator, layout: Layout):
    """The random draws of n views' augmentations, in the one order both
    `sample_augment` and `sample_augment_parts` consume the generator."""
    deg = np.pi / 180.0
    rot = rng.random(n) < cfg.p_rotate
    mir = rng.random(n) < cfg.p_mirror
    sca = rng.random(n) < cfg.p_scale
    ax = rng.uniform(-cfg.rot_xz_deg, cfg.rot_xz_deg, size=(3, n)) * deg
    ay = rng.uniform(-cfg.rot_y_deg, cfg.rot_y_deg, size=n) * deg
    factors = rng.uniform(cfg.scale_range[0], cfg.scale_range[1],
                          size=(n, len(layout.groups)))
    return rot, mir, sca, ax, ay, factors


def sample_augment(n: int, cfg: PipelineConfig, rng: np.random.Generator,
                   layout: Layout = NTU25) -> tuple[np.ndarray, np.ndarray]:
    """Draw augmentations for n views: J [N, V, V] (joint mixing) and K [N, 3, 3]
    (coordinate map). Each of rotation, mirroring, scaling is applied with its own
    probability; views without any get exact identities."""
    rot, mir, sca, ax, ay, factors = _draw(n, cfg, rng, layout)
    r = rotation_matrices(np.where(rot, ax[0], 0.0), np.where(rot, ay, 0.0),
                          np.where(rot, ax[2], 0.0))
    factors = np.where(sca[:, None], factors, 1.0)
    p, f = mirror_matrices(mir, layout)
    return scaling_matrices(factors, layout) @ p, r @ f



def sample_augment_parts(n: int, cfg: PipelineConfig, rng: np.random.Generator,
                         layout: Layout = NTU25) -> dict:
    """The same draws as `sample_augment` (same generator use, same distribution), in
    the factored form the batch transform applies cheaply:

      mirror: bool [N]            views whose joints are permuted by layout.mirror_perm
                                  (J = S @ P_mirror; the permutation is a gather);
      scaled: int64 [N_s]         views with bone scaling, and
      scale: float32 [N_s, V, V]  their S (exactly `scaling_matrices` of their factors);
      coord: float32 [N, 3, 3]    K = R @ F_mirror of every view;
      coord_on: bool [N]          views whose K is not the identity (rotated or mirrored).

    Composing them gives `sample_augment`'s J = S @ P and K exactly.
    """
    rot, mir, sca, ax, ay, factors = _draw(n, cfg, rng, layout)
    k = np.tile(np.eye(3), (n, 1, 1))
    on = np.flatnonzero(rot)
    if on.size:
        k[on] = rotation_matrices(ax[0, on], ay[on], ax[2, on])
    k[:, :, 0] = np.where(mir[:, None], -k[:, :, 0], k[:, :, 0])  # R @ diag(-1, 1, 1)
    scaled = np.flatnonzero(sca)
    return {"mirror": mir, "scaled": scaled,
            "scale": scaling_matrices(factors[scaled], layout).astype(np.float32),
            "coord": k.astype(np.float32), "coord_on": rot | mir}


def augment_operators(j: np.ndarray, k: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-view operators in the form `apply_augment` multiplies with.

    j: [N, V, V], k: [N, 3, 3] -> (float32 [N, V, V], float32 [N, 3, 3] transposed).
    """
    return (torch.from_numpy(j.astype(np.float32)),
            torch.from_numpy(k.astype(np.float32)).transpose(1, 2))


def apply_augment(x: np.ndarray, op: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    """Apply per-view operators from `augment_operators`: two batched matmuls, joints
    first (as [N, V, T*C]), then coordinates (as [N, T*V, C]); measured faster than one
    [V*C, V*C] Kronecker operator, whose construction dominates.

    x: float32 [N, T, V, 3] (metres) -> float32 [N, T, V, 3] with
    out[n, t, v] = k[n] @ sum_w j[n, v, w] x[n, t, w].
    """
    n, t, v, c = x.shape
    jt, kt = op
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    y = torch.bmm(jt, xt.permute(0, 2, 1, 3).reshape(n, v, t * c)).reshape(n, v, t, c)
    y = torch.bmm(y.permute(0, 2, 1, 3).reshape(n, t * v, c), kt)
    return y.reshape(n, t, v, c).numpy()


def augment_views(x: np.ndarray, cfg: PipelineConfig, rng: np.random.Generator,
                  layout: Layout = NTU25) -> np.ndarray:
    """Draw and apply skeleton-aware augmentations to every view independently.

    x: float32 [N, T, V, 3] (metres) -> float32 [N, T, V, 3]; unchanged when
    cfg.augment is False.
    """
    if not cfg.augment or x.shape[0] == 0:
        return x
    return apply_augment(x, augment_operators(*sample_augment(x.shape[0], cfg, rng, layout)))


def mirror_source(flat: np.ndarray, layout: Layout = NTU25) -> np.ndarray:
    """Frames and their joint-mirrored copies, so that a view's mirror permutation is
    part of its frame gather: flat [R, V, C] -> [2R, V, C], rows R + r hold
    flat[r][layout.mirror_perm] (P_mirror applied; the x sign flip is in the view's K).
    Raises ValueError when V is not the layout's joint count."""
    if flat.shape[1] != layout.num_joints:
        raise ValueError(f"frames have {flat.shape[1]} joints, layout {layout.name} has {layout.num_joints}")
    r = flat.shape[0]
    out = np.empty((2 * r,) + flat.shape[1:], dtype=flat.dtype)
    out[:r] = flat
    for dst, src, n in operators(layout).mirror_runs:  # block copies: a fancy index moves 12 B at a time
        out[r:, dst:dst + n] = flat[:, src:src + n]
    return out


def _runs(perm: np.ndarray) -> list[tuple[int, int, int]]:
    """perm as (dst, src, length) runs with perm[dst + i] = src + i."""
    runs: list[tuple[int, int, int]] = []
    for d, s in enumerate(int(p) for p in perm):
        if runs and runs[-1][1] + runs[-1][2] == s:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((d, s, 1))
    return runs



def apply_augment_parts(x: np.ndarray, parts: dict, lo: int = 0) -> np.ndarray:
    """Apply views lo.. lo + N of `sample_augment_parts` to views whose joints are
    already mirror-permuted (gathered from `mirror_source`): bone scaling on the scaled
    views only (one batched matmul), then the coordinate map on views whose K is not
    the identity (one batched matmul). Views with neither are not touched. In place.

    x: float32 [N, T, V, 3] -> x, with out[n, t] = S[n] @ x[n, t] @ K[n]^T, which is
    `apply_augment` with J = S @ P, K (P already applied).
    """
    n, t, v, c = x.shape
    scaled = parts["scaled"]
    sel = np.searchsorted(scaled, [lo, lo + n])
    if sel[1] > sel[0]:
        idx = scaled[sel[0]:sel[1]] - lo
        xs = torch.from_numpy(x[idx]).permute(0, 2, 1, 3).reshape(idx.size, v, t * c)
        y = torch.bmm(torch.from_numpy(parts["scale"][sel[0]:sel[1]]), xs)
        x[idx] = y.reshape(idx.size, v, t, c).permute(0, 2, 1, 3).numpy()
    idx = np.flatnonzero(parts["coord_on"][lo:lo + n])
    if idx.size:
        kt = parts["coord"][lo + idx].transpose(0, 2, 1)
        x[idx] = np.matmul(x[idx].reshape(idx.size, t * v, c), kt).reshape(idx.size, t, v, c)
    return x
