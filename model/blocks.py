"""Transformer pieces of the encoder: attention with temporal RoPE on patch tokens,
the two feed-forward kinds (SwiGLU as released, GELU MLP as a plain ViT), drop-path
and the pre-norm block."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rope import apply_rope


class Attention(nn.Module):
    """Multi-head self-attention with RoPE on queries and keys (the tables decide which
    tokens rotate: the encoder leaves cls and registers unrotated).

    `fused = True` uses scaled_dot_product_attention; `False` runs the same maths with
    explicit matmuls, which FLOP counters can see (PROTOCOLS "Cost convention")."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}: change EncoderConfig")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.fused = True

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """x: [B, N, D] -> [B, N, D]. rope: cos, sin [N, head_dim] (identity rows, cos 1 and
        sin 0, for the unrotated cls/register tokens) or None."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope is not None:
            # one fused rotation of q and k over all tokens: no slicing/concatenation of prefixes
            q, k = apply_rope(qkv[:2], *rope).unbind(0)
            v = qkv[2]
        else:
            q, k, v = qkv.unbind(0)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.head_dim ** -0.5) @ k.transpose(-2, -1)
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _GateProject(torch.autograd.Function):
    """w3(silu(x1) * x2) for x12 = [x1, x2] [..., 2H], keeping only x12 for backward and
    recomputing the gate there. Autograd of the plain expression keeps x12, silu(x1) and
    the product: 4H floats per token instead of 2H. With the cpu-demo preset that is
    ~150 MB of the ~630 MB a step keeps for backward (batch 32, 3 layers, H 256); the
    recomputation is two elementwise passes over [N, H] (fwd + bwd of the block ~2 %
    more CPU time, measured; a step ~1 %).
    Gradients are those of autograd's own formulas (silu'(x) = s (1 + x (1 - s)),
    s = sigmoid(x)), equal up to float rounding."""

    @staticmethod
    def forward(ctx, x12: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        x1, x2 = x12.chunk(2, dim=-1)
        ctx.save_for_backward(x12, weight)
        ctx.has_bias = bias is not None
        return F.linear(F.silu(x1) * x2, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x12, weight = ctx.saved_tensors
        x1, x2 = x12.chunk(2, dim=-1)
        hidden = x1.shape[-1]
        silu = F.silu(x1)
        g2 = grad.reshape(-1, grad.shape[-1])
        grad_w = g2.t() @ (silu * x2).reshape(-1, hidden)
        grad_b = g2.sum(0) if ctx.has_bias else None
        gh = grad @ weight
        gx12 = torch.empty_like(x12)
        torch.mul(gh, silu, out=gx12[..., hidden:])
        gx12[..., :hidden] = torch.ops.aten.silu_backward(gh * x2, x1)
        return gx12, grad_w, grad_b


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")       # torch >= 2.4
    except TypeError:
        return torch.is_autocast_cpu_enabled()


class SwiGLU(nn.Module):
    """SwiGLU feed-forward (DINOv2's fused layout: one D -> 2H projection).

    When training on the CPU (grad enabled, no autocast, not compiled) the gate and output
    projection run as `_GateProject`, which keeps half the activations for backward;
    elsewhere (GPU, bf16 autocast, torch.compile, inference, FLOP counting) the plain
    expression."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., D]"""
        x12 = self.w12(x)
        # Not under torch.compile: the compiler plans the saved activations itself (and
        # Dynamo cannot trace the Function's `out=` backward into one graph).
        if (x12.requires_grad and x12.device.type == "cpu" and not _cpu_autocast()
                and not torch.compiler.is_compiling()):
            return _GateProject.apply(x12, self.w3.weight, self.w3.bias)
        x1, x2 = x12.chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class Mlp(nn.Module):
    """GELU MLP of a plain ViT."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., D]"""
        return self.fc2(F.gelu(self.fc1(x)))


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth on a residual branch, per sample. x: [B, ...] -> [B, ...]."""
    if rate <= 0.0 or not training:
        return x
    keep = 1.0 - rate
    # Sampled from torch's default generator: drop-path only runs in fine-tuning, whose
    # loop owns and seeds that generator (like dropout).
    m = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * m / keep


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN x), then x + ffn(LN x)."""

    def __init__(self, dim: int, heads: int, ffn: str, ffn_hidden: int, qkv_bias: bool,
                 drop_path_rate: float, ln_eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        if ffn == "swiglu":
            self.mlp = SwiGLU(dim, ffn_hidden)
        elif ffn == "mlp":
            self.mlp = Mlp(dim, ffn_hidden)
        else:
            raise ValueError(f"unknown ffn {ffn!r}: use 'swiglu' or 'mlp'")
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor, rope) -> torch.Tensor:
        """x: [B, N, D] -> [B, N, D]; rope: see Attention.forward."""
        x = x + drop_path(self.attn(self.norm1(x), rope), self.drop_path_rate, self.training)
        x = x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)
        return x
