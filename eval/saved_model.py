"""The glue between the protocols and classifier files: the reuse key of a protocol run,
reading a reusable record back, and saving a trained head (and encoder) of an EvalTarget."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from torch import nn

from .classifier import ClassifierError, classifier_path, config_key, load_classifier, save_classifier
from .target import EvalTarget

__all__ = ["classifier_path", "protocol_key", "reusable_record", "save_target_classifier",
           "write_json_atomic"]


def protocol_key(target: EvalTarget, protocol: str, variant: str, cfg) -> str:
    """classifier.config_key of a protocol config (a dataclass) on a target."""
    return config_key(protocol, variant, target.sha256, target.data_dir, target.benchmark, asdict(cfg),
                      eval_len=target.eval_len)


def reusable_record(path: Path, key: str) -> dict | None:
    """The stored result record of the classifier at `path` when it loads cleanly and was
    trained with the same config key; None otherwise (no file, another config, a damaged
    file or a frozen encoder that changed: then the protocol trains again)."""
    if not Path(path).is_file():
        return None
    try:
        saved = load_classifier(path)
    except ClassifierError:
        return None
    return saved.record if saved.config_key == key else None


def save_target_classifier(path: Path, target: EvalTarget, head: nn.Module, head_kind: str,
                           pool: str, protocol: str, variant: str, record: dict, key: str, *,
                           frozen: bool, encoder=None) -> Path:
    """Save a protocol's classifier. frozen=True: the target's encoder was not trained, so
    a trained encoder is stored by reference (its file's sha256), a random one embedded;
    frozen=False: `encoder` (the fine-tuned one) is embedded."""
    ref = frozen and target.encoder_path is not None
    return save_classifier(path, encoder=encoder if encoder is not None else target.encoder, head=head,
                           head_kind=head_kind, pool=pool, protocol=protocol, variant=variant,
                           dataset=target.dataset, benchmark=target.benchmark, meta=target.meta,
                           record=record, config_key=key,
                           encoder_file=target.encoder_path if ref else None,
                           encoder_sha256=target.sha256 if ref else None,
                           transform={"name": "test_view", "out_len": int(target.eval_len),
                                      "crop": 0.95, "persons": 2})


def write_json_atomic(path: Path, obj: dict) -> None:
    """JSON to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
