"""Skeleton-aware augmentations (paper Appendix D): rotation, mirroring and bone-aware
scaling, each drawn per view with its own probability.

All three are linear maps of a frame's joints, so a view's augmentation is one
[V*C, V*C] matrix: joints are mixed by J = S_scale @ P_mirror (per joint, same for
x, y, z) and coordinates by K = R @ F_mirror (per joint, same for every joint), i.e.
kron(J, K). Many views are augmented with one batched matmul; zeros (absent persons,
absent frames) stay zeros.
"""
from __future__ import annotations

import numpy as np
import torch

from slim.ingest.topology import GROUP_OF_JOINT, MIRROR_PERM, NUM_JOINTS, PARENTS, TOPO_ORDER

from .config import PipelineConfig


def _ancestor_matrix() -> np.ndarray:
    """A[j, k] = 1 when bone k (child k -> its parent) lies on the path root -> j.

    Built parent-before-child (TOPO_ORDER), never in index order.
    """
    a = np.zeros((NUM_JOINTS, NUM_JOINTS))
    for j in TOPO_ORDER:
        p = PARENTS[j]
        if p >= 0:
            a[j] = a[p]
            a[j, j] = 1.0
    return a


#: [V, V] path matrix: joint j = root + sum_k ANCESTORS[j, k] * bone_k.
ANCESTORS = _ancestor_matrix()
#: [V, V] bone matrix: bone_j = joint_j - joint_parent(j) (row of the root is zero).
BONE_MATRIX = np.eye(NUM_JOINTS)
for _j, _p in enumerate(PARENTS):
    if _p < 0:
        BONE_MATRIX[_j, _j] = 0.0
    else:
        BONE_MATRIX[_j, _p] = -1.0
del _j, _p


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


def scaling_matrices(factors: np.ndarray) -> np.ndarray:
    """Joint-mixing matrices of bone-aware scaling (Algorithm 4).

    factors: [N, G] (one per semantic group, GROUP_NAMES order) -> [N, V, V]. Bone j
    (child j) is multiplied by its group's factor, keeping its direction; joints are
    rebuilt from the unchanged root trajectory, parent before child. Written as
    I + A diag(s - 1) B so that factors of exactly 1 give exactly the identity.
    """
    s = factors[:, GROUP_OF_JOINT] - 1.0  # [N, V], per child joint
    return np.eye(NUM_JOINTS) + (ANCESTORS[None] * s[:, None, :]) @ BONE_MATRIX


def mirror_matrices(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirroring (Algorithm 3) as a joint permutation and an x reflection.

    flags: bool [N] -> P: [N, V, V] (x'[v] = x[MIRROR_PERM[v]] where flagged),
    F: [N, 3, 3] (diag(-1, 1, 1) where flagged).
    """
    n = flags.shape[0]
    perm = np.where(flags[:, None], MIRROR_PERM[None, :], np.arange(NUM_JOINTS)[None, :])
    p = np.zeros((n, NUM_JOINTS, NUM_JOINTS))
    p[np.arange(n)[:, None], np.arange(NUM_JOINTS)[None, :], perm] = 1.0
    f = np.tile(np.eye(3), (n, 1, 1))
    f[:, 0, 0] = np.where(flags, -1.0, 1.0)
    return p, f


def sample_augment(n: int, cfg: PipelineConfig, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Draw augmentations for n views: J [N, V, V] (joint mixing) and K [N, 3, 3]
    (coordinate map). Each of rotation, mirroring, scaling is applied with its own
    probability; views without any get exact identities."""
    deg = np.pi / 180.0
    rot = rng.random(n) < cfg.p_rotate
    mir = rng.random(n) < cfg.p_mirror
    sca = rng.random(n) < cfg.p_scale
    ax = rng.uniform(-cfg.rot_xz_deg, cfg.rot_xz_deg, size=(3, n)) * deg
    ay = rng.uniform(-cfg.rot_y_deg, cfg.rot_y_deg, size=n) * deg
    r = rotation_matrices(np.where(rot, ax[0], 0.0), np.where(rot, ay, 0.0),
                          np.where(rot, ax[2], 0.0))
    factors = rng.uniform(cfg.scale_range[0], cfg.scale_range[1], size=(n, len(set(GROUP_OF_JOINT))))
    factors = np.where(sca[:, None], factors, 1.0)
    p, f = mirror_matrices(mir)
    return scaling_matrices(factors) @ p, r @ f


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


def augment_views(x: np.ndarray, cfg: PipelineConfig, rng: np.random.Generator) -> np.ndarray:
    """Draw and apply skeleton-aware augmentations to every view independently.

    x: float32 [N, T, V, 3] (metres) -> float32 [N, T, V, 3]; unchanged when
    cfg.augment is False.
    """
    if not cfg.augment or x.shape[0] == 0:
        return x
    return apply_augment(x, augment_operators(*sample_augment(x.shape[0], cfg, rng)))
