"""1D temporal rotary position embedding (RoPE) for patch tokens.

A patch token at temporal patch index t has its query and key rotated by angles
t * base^(-2i/head_dim) (i = 0 .. head_dim/2 - 1), in the "rotate half" layout (channel
i pairs with channel i + head_dim/2). Then q_t . k_s depends on t - s only, which is what
lets one encoder run views of 64, 32, 16 and 8 frames without interpolating anything.
"""
from __future__ import annotations

import torch


def rope_angles(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables for rotating tokens at the given positions.

    positions: float or int [N] (temporal patch indices, in patches).
    Returns cos, sin: float32 [N, head_dim] (each half repeated so they line up with
    `rotate_half`).
    """
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim, got {head_dim}: choose dim/heads even")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    ang = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # [N, head_dim/2] radians
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[..., d] -> [..., d]: (x1, x2) -> (-x2, x1) over the two halves of the last dim."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys.

    x: [..., N, head_dim]; cos, sin: [N, head_dim] from `rope_angles`. Returns x's shape
    and dtype (the tables are cast to x's dtype, so this is autocast-friendly).
    """
    cos = cos.to(x.dtype)
    sin = sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin
