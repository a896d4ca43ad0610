"""Encoder-only checkpoint files: weights + the config they were built with, loaded with
`weights_only=True` and strict keys (any missing or unexpected key is an error that names
the keys and the file)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from .encoder import Encoder, EncoderConfig

FORMAT = "slim-encoder"
FORMAT_VERSION = 1
_RESERVED = ("format", "version", "config")


def _unwrap(module: nn.Module) -> nn.Module:
    """DDP (`.module`) and torch.compile (`._orig_mod`) wrappers add key prefixes: strip them."""
    while True:
        if hasattr(module, "_orig_mod"):
            module = module._orig_mod
        elif isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        else:
            return module


def save_encoder(path: str | os.PathLike, encoder: Encoder, extra: dict | None = None) -> Path:
    """Write `encoder` to `path` atomically (temporary file + rename).

    File content (a dict of plain types, loadable with weights_only=True): "format",
    "version", "config" (asdict of EncoderConfig), "state_dict" (tensors, on CPU),
    "extra" (plain-typed metadata, e.g. run name, step, code version)."""
    encoder = _unwrap(encoder)
    if not isinstance(encoder, Encoder):
        raise TypeError(f"save_encoder takes an Encoder, got {type(encoder).__name__}")
    extra = dict(extra or {})
    clash = [k for k in extra if k in _RESERVED]
    if clash:
        raise ValueError(f"extra meta keys {clash} are reserved: rename them")
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(encoder.cfg),
        "state_dict": {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()},
        "extra": extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _sniff(path: Path) -> str:
    """"zip" for a torch.save file, else a few words saying what the file is."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (e.g. a dataset's samples.h5)"
    if head.startswith(b"PAR1"):
        return "a Parquet file"
    if not head:
        return "an empty file"
    return "not a file written by torch.save"


def load_encoder(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Encoder, dict]:
    """Build the encoder recorded in `path` and load its weights strictly.

    Returns (encoder in eval mode, meta) where meta = {**extra, "format", "version",
    "config" (dict)}. Raises ValueError naming the file for a wrong format, an unknown
    config field, or missing/unexpected/mis-shaped weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no encoder file here (write one with `slim-train export`)")
    kind = _sniff(path)
    if kind != "zip":
        raise ValueError(f"{path}: {kind}, not an encoder file; pass the encoder.pt that "
                         "`slim-train export RUN` writes (a dataset goes to --data)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"{path}: cannot be read as an encoder file with weights_only=True ({e}); "
                         "re-export it with `slim-train export`") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format={payload.get('format') if isinstance(payload, dict) else None!r}); "
                         "export the encoder with `slim-train export` (training checkpoints are not encoder files)")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: {FORMAT} version {payload.get('version')}, this code reads {FORMAT_VERSION}: "
                         "re-export it with this code version")
    fields = {f.name for f in dataclasses.fields(EncoderConfig)}
    unknown = sorted(set(payload["config"]) - fields)
    if unknown:
        raise ValueError(f"{path}: config fields {unknown} are unknown to this EncoderConfig; "
                         "use the code version that wrote the file")
    cfg = EncoderConfig(**payload["config"])
    encoder = Encoder(cfg)
    state = payload["state_dict"]
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: encoder weights do not match its config: missing keys {missing}, "
                         f"unexpected keys {unexpected}; the file is damaged or was not written by save_encoder")
    shapes = [f"{k} {list(state[k].shape)} != {list(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
    if shapes:
        raise ValueError(f"{path}: weight shapes do not match the config: {shapes}")
    encoder.load_state_dict(state, strict=True)
    encoder.eval()
    meta = {**payload.get("extra", {}), "format": payload["format"], "version": payload["version"],
            "config": dict(payload["config"])}
    return encoder, meta
