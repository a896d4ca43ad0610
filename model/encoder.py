"""The skeleton ViT encoder: patch embedding, learnable mask token, joint embedding, cls +
register tokens, temporal RoPE, pre-norm blocks, final LayerNorm. It knows nothing about
self-supervision; `encode_sample` turns multi-person samples into one feature each."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Block
from .rope import rope_angles


@dataclass(frozen=True)
class EncoderConfig:
    """Encoder hyper-parameters; defaults are the paper's (8 x 256 x 8 heads, 4 registers,
    patch (8, 1), SwiGLU 688, temporal RoPE)."""

    num_joints: int = 25
    in_chans: int = 3
    patch_t: int = 8              # frames per patch
    patch_j: int = 1              # joints per patch (consecutive joint indices)
    dim: int = 256
    depth: int = 8
    heads: int = 8
    registers: int = 4
    ffn: str = "swiglu"           # "swiglu" (released) | "mlp" (GELU, plain ViT)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    pos: str = "rope"             # "rope" (temporal RoPE) | "absolute" (learned temporal table, MAMP-like)
    rope_base: float = 10000.0
    max_frames: int = 64          # only for pos="absolute": longest input (frames)
    mask_before_joint_embed: bool = True  # DESIGN decision 1
    drop_path_rate: float = 0.0   # fine-tuning only; linearly increasing over depth
    ln_eps: float = 1e-6
    #: Input coordinates: False = as given (centred on one frame, so every joint carries
    #: the body's trajectory); True = every joint but `root_joint` relative to that
    #: frame's root, the root keeping its trajectory (an invertible change of
    #: coordinates: pose and trajectory in separate tokens). Issue 13: on real recordings
    #: the trajectory dominates every token and pretraining learned nothing else.
    root_relative: bool = False
    root_joint: int = 0           # the layouts' tree root (ntu25 SpineBase, kinect_v1_20 HipCenter)

    @classmethod
    def tiny(cls, **overrides) -> "EncoderConfig":
        """2 layers x 64 x 2 heads, for tests and CPU smoke runs."""
        return cls(**{"dim": 64, "depth": 2, "heads": 2, **overrides})

    @classmethod
    def mamp(cls, **overrides) -> "EncoderConfig":
        """MAMP's encoder cost model: plain ViT, T = 120, P_T = 4, no registers, GELU MLP,
        learned absolute temporal + joint position tables (one cls token kept, since our
        encoder always has one: 751 instead of 750 tokens, +0.1 % FLOPs)."""
        return cls(**{"patch_t": 4, "registers": 0, "ffn": "mlp", "pos": "absolute",
                      "max_frames": 120, **overrides})

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def ffn_hidden(self) -> int:
        """SwiGLU keeps the MLP's parameter count: 2/3 of 4D rounded up to 8 (688 for D 256)."""
        h = int(self.mlp_ratio * self.dim)
        return (int(h * 2 / 3) + 7) // 8 * 8 if self.ffn == "swiglu" else h

    @property
    def joint_tokens(self) -> int:
        return self.num_joints // self.patch_j


class Encoder(nn.Module):
    """`forward(x [B, T, V, C], mask bool [B, T/P_T * V/P_J] | None)` ->
    {"cls": [B, D], "registers": [B, R, D], "patches": [B, T/P_T, V/P_J, D]}, all after
    the final LayerNorm. T may be any multiple of P_T (no interpolation with RoPE).
    Token order inside: cls, registers, patches (time-major: t0v0, t0v1, ...)."""

    def __init__(self, cfg: EncoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        if cfg.num_joints % cfg.patch_j:
            raise ValueError(f"num_joints {cfg.num_joints} is not a multiple of patch_j {cfg.patch_j}")
        if cfg.pos not in ("rope", "absolute"):
            raise ValueError(f"unknown pos {cfg.pos!r}: use 'rope' or 'absolute'")
        if not 0 <= cfg.root_joint < cfg.num_joints:
            raise ValueError(f"root_joint {cfg.root_joint} is not a joint of {cfg.num_joints}")
        self.cfg = cfg
        d = cfg.dim
        self.patch_embed = nn.Linear(cfg.patch_t * cfg.patch_j * cfg.in_chans, d)
        self.joint_embed = nn.Parameter(torch.zeros(cfg.joint_tokens, d))
        self.cls_token = nn.Parameter(torch.zeros(1, d))
        self.register_tokens = nn.Parameter(torch.zeros(cfg.registers, d))
        self.mask_token = nn.Parameter(torch.zeros(d))
        if cfg.pos == "absolute":
            self.temporal_embed = nn.Parameter(torch.zeros(cfg.max_frames // cfg.patch_t, d))
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist() if cfg.depth else []
        self.blocks = nn.ModuleList(
            Block(d, cfg.heads, cfg.ffn, cfg.ffn_hidden, cfg.qkv_bias, r, cfg.ln_eps) for r in rates)
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Truncated normal (std 0.02) for linear weights and learned tokens/tables, zero
        biases and mask token, unit LayerNorms (as DINOv2)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for p in (self.joint_embed, self.cls_token, self.register_tokens) + (
                (self.temporal_embed,) if self.cfg.pos == "absolute" else ()):
            nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04, generator=generator)
        nn.init.zeros_(self.mask_token)

    # -- pieces ---------------------------------------------------------------------

    def coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input coordinates (cfg.root_relative): x [B, T, V, C] as given, or
        every joint minus its frame's root joint except the root itself, which keeps its
        position. Zero frames (absent persons, padding) stay zero."""
        if not self.cfg.root_relative:
            return x
        r = self.cfg.root_joint
        keep = torch.ones(x.shape[-2], 1, dtype=x.dtype, device=x.device)
        keep[r] = 0.0
        return x - x[..., r:r + 1, :] * keep

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, V, C] -> [B, T/P_T * V/P_J, P_T * P_J * C] (time-major token order)."""
        c = self.cfg
        b, t, v, ch = x.shape
        if t % c.patch_t or v != c.num_joints or ch != c.in_chans:
            raise ValueError(f"encoder input must be [B, T, {c.num_joints}, {c.in_chans}] with T a multiple "
                             f"of {c.patch_t}, got {list(x.shape)}: resample the view length")
        x = x.reshape(b, t // c.patch_t, c.patch_t, v // c.patch_j, c.patch_j, ch)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(b, (t // c.patch_t) * (v // c.patch_j), -1)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Patch tokens before the transformer.

        x: [B, T, V, C]; mask: bool [B, N] (N = T/P_T * V/P_J, True = replace by the mask
        token) or None. Returns [B, N, D]. With `mask_before_joint_embed` the mask token
        replaces the patch embedding and the joint embedding is added after, so masked
        tokens keep their joint identity (DESIGN decision 1)."""
        c = self.cfg
        tok = self.patch_embed(self.patchify(self.coordinates(x)))
        b, n, d = tok.shape
        nt = n // c.joint_tokens
        pos = self.joint_embed.repeat(nt, 1)  # [N, D]: joint identity, broadcast over time
        if c.pos == "absolute":
            if nt > self.temporal_embed.shape[0]:
                raise ValueError(f"{nt * c.patch_t} frames exceed max_frames {c.max_frames} of the absolute "
                                 "position table: raise EncoderConfig.max_frames")
            pos = pos + self.temporal_embed[:nt].repeat_interleave(c.joint_tokens, dim=0)
        if mask is not None and mask.shape != (b, n):
            raise ValueError(f"mask must be bool [B, {n}] for this input, got {list(mask.shape)}")
        if c.mask_before_joint_embed:
            if mask is not None:
                tok = torch.where(mask[..., None], self.mask_token.to(tok.dtype), tok)
            return tok + pos
        tok = tok + pos
        if mask is not None:
            tok = torch.where(mask[..., None], self.mask_token.to(tok.dtype), tok)
        return tok

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x: [B, T, V, C] (metres); mask: bool [B, T/P_T * V/P_J] or None.
        Returns {"cls": [B, D], "registers": [B, R, D], "patches": [B, T/P_T, V/P_J, D]}."""
        c = self.cfg
        patches = self.embed(x, mask)
        b, n, d = patches.shape
        nt = n // c.joint_tokens
        prefix = 1 + c.registers
        tokens = torch.cat([self.cls_token.expand(b, 1, d).to(patches.dtype),
                            self.register_tokens.expand(b, c.registers, d).to(patches.dtype), patches], dim=1)
        rope = None
        if c.pos == "rope":
            t_idx = torch.arange(nt, device=x.device).repeat_interleave(c.joint_tokens)
            cos, sin = rope_angles(t_idx, c.head_dim, c.rope_base)
            # DESIGN decision 2: cls and registers are not rotated (identity rows)
            rope = (torch.cat([cos.new_ones(prefix, c.head_dim), cos]),
                    torch.cat([sin.new_zeros(prefix, c.head_dim), sin]))
        for blk in self.blocks:
            tokens = blk(tokens, rope)
        tokens = self.norm(tokens)
        return {"cls": tokens[:, 0], "registers": tokens[:, 1:prefix],
                "patches": tokens[:, prefix:].reshape(b, nt, c.joint_tokens, d)}

    # -- helpers for fine-tuning and cost counting ------------------------------------

    @property
    def num_layer_ids(self) -> int:
        """Layer ids run 0 (embeddings, tokens) .. depth (blocks) .. depth + 1 (final norm)."""
        return self.cfg.depth + 2

    def layer_id(self, name: str) -> int:
        """Layer id of a parameter name of this encoder, for layer-wise lr decay
        (lr scale = decay ** (num_layer_ids - 1 - layer_id))."""
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        if name.startswith("norm."):
            return self.cfg.depth + 1
        return 0

    def set_drop_path(self, rate: float) -> None:
        """Set stochastic depth (linearly increasing to `rate` over blocks); for fine-tuning
        an encoder loaded from a pretraining export (whose config has 0)."""
        rates = torch.linspace(0, rate, len(self.blocks)).tolist()
        for blk, r in zip(self.blocks, rates):
            blk.drop_path_rate = r
        self.cfg = dataclasses.replace(self.cfg, drop_path_rate=rate)

    def set_fused_attention(self, fused: bool) -> None:
        """True: SDPA kernels (fast). False: explicit matmuls, visible to FLOP counters."""
        for blk in self.blocks:
            blk.attn.fused = fused


POOLS = ("cls", "mean", "cls+mean")


def pool_features(out: dict[str, torch.Tensor], pool: str) -> torch.Tensor:
    """Encoder output -> features [B, F]: cls [B, D], mean of patch tokens [B, D], or
    their concatenation [B, 2D] (DESIGN decision 8)."""
    if pool == "cls":
        return out["cls"]
    if pool == "mean":
        return out["patches"].flatten(1, 2).mean(1)
    if pool == "cls+mean":
        return torch.cat([out["cls"], out["patches"].flatten(1, 2).mean(1)], dim=-1)
    raise ValueError(f"unknown pool {pool!r}: use one of {POOLS}")


def encode_sample(encoder: Encoder, x: torch.Tensor, person_mask: torch.Tensor,
                  pool: str = "cls+mean") -> torch.Tensor:
    """Features of multi-person samples, averaged over present persons.

    x: float [B, M, T, V, C]; person_mask: bool [B, M] (True = present). Only present
    persons are gathered into one [P, T, V, C] batch and encoded (absent ones cost
    nothing); returns [B, F] with F = D (cls, mean) or 2D (cls+mean). Every sample must
    have at least one present person."""
    b, m = person_mask.shape
    if x.shape[:2] != (b, m):
        raise ValueError(f"x {list(x.shape)} and person_mask {list(person_mask.shape)} disagree on [B, M]")
    pm = person_mask.to(torch.bool)
    counts = pm.sum(1)
    if bool((counts == 0).any()):
        bad = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"samples {bad[:10]} of the batch have no present person: "
                         "person_mask must mark at least one person per sample")
    flat = pm.flatten()
    feats = pool_features(encoder(x.flatten(0, 1)[flat]), pool)  # [P, F]
    owner = torch.arange(b, device=x.device).repeat_interleave(m)[flat]  # [P] sample of each person
    summed = feats.new_zeros(b, feats.shape[1]).index_add_(0, owner, feats)
    return summed / counts[:, None].to(feats.dtype)
