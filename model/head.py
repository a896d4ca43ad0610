"""DINO-style projection head: 3-layer MLP (GELU) to a bottleneck, L2-normalisation, and
a weight-normalised prototype layer without bias. One head per objective (GLCL on the
class token, MFM on patch tokens)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class HeadConfig:
    """Defaults are the paper's: 256 -> 2048 -> 2048 -> 256, K = 65,536 prototypes."""

    hidden: int = 2048
    bottleneck: int = 256
    prototypes: int = 65536
    layers: int = 3
    #: BatchNorm after each hidden linear layer (DINO's `use_bn` option; the paper's head
    #: has none). Issue 13: on a small real set with a small batch the head's output
    #: collapsed to one direction orthogonal to every prototype (uniform targets, no
    #: signal); batch statistics take out the component all samples share.
    batchnorm: bool = False

    @classmethod
    def tiny(cls, **overrides) -> "HeadConfig":
        return cls(**{"hidden": 64, "bottleneck": 32, "prototypes": 128, **overrides})


class PrototypeLayer(nn.Module):
    """Linear bottleneck -> K with each prototype (row of `weight`) normalised to unit
    length and no bias: weight normalisation with the gain fixed to 1 (DINO's
    norm_last_layer), so logits are cosines of the L2-normalised input."""

    def __init__(self, in_dim: int, prototypes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(prototypes, in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, in_dim] -> logits [N, K]"""
        return F.linear(x, F.normalize(self.weight, dim=-1))


class DINOHead(nn.Module):
    """`forward(x [N, D]) -> logits [N, K]` (cosine logits in [-1, 1]; divide by a temperature)."""

    def __init__(self, in_dim: int, cfg: HeadConfig, generator: torch.Generator | None = None):
        super().__init__()
        if cfg.layers < 1:
            raise ValueError("HeadConfig.layers must be >= 1")
        dims = [in_dim] + [cfg.hidden] * (cfg.layers - 1) + [cfg.bottleneck]
        layers: list[nn.Module] = []
        for i in range(cfg.layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < cfg.layers - 1:
                if cfg.batchnorm:
                    layers.append(nn.BatchNorm1d(dims[i + 1]))
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        self.last_layer = PrototypeLayer(cfg.bottleneck, cfg.prototypes)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04, generator=generator)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.last_layer.weight, std=0.02, a=-0.04, b=0.04, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, D] -> logits [N, K]"""
        z = F.normalize(self.mlp(x), dim=-1, eps=1e-6)
        return self.last_layer(z)
