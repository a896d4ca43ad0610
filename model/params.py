"""What an optimiser needs to know about each parameter: weight decay or not, lr
multiplier, whether it is a head's last (prototype) layer, and its layer id.

Rules (PROTOCOLS "Pretraining"):
- no weight decay: biases, LayerNorm weights, and the learned tokens / position tables
  (cls_token, register_tokens, mask_token, joint_embed, temporal_embed): every parameter
  with ndim <= 1 or one of those names;
- lr x `patch_embed_lr_mult` (0.2) for the patch embedding (`patch_embed.*`);
- `last_layer`: a head's prototype layer (`*.last_layer.*`), frozen during epoch 0.
"""
from __future__ import annotations

from collections.abc import Iterable

from torch import nn

TOKEN_NAMES = ("cls_token", "register_tokens", "mask_token", "joint_embed", "temporal_embed")


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.rsplit(".", 1)[-1] in TOKEN_NAMES


def is_patch_embed(name: str) -> bool:
    return "patch_embed." in name


def is_last_layer(name: str) -> bool:
    return "last_layer." in name


def param_spec(named: Iterable[tuple[str, nn.Parameter]], patch_embed_lr_mult: float = 0.2) -> list[dict]:
    """One dict per trainable parameter: {"name", "param", "weight_decay" (bool),
    "lr_mult" (float), "last_layer" (bool)}. Parameters with requires_grad False are left out."""
    out = []
    for name, p in named:
        if not p.requires_grad:
            continue
        out.append({"name": name, "param": p, "weight_decay": not no_weight_decay(name, p),
                    "lr_mult": patch_embed_lr_mult if is_patch_embed(name) else 1.0,
                    "last_layer": is_last_layer(name)})
    return out
