"""Saved classifiers: what `slim-eval linear`, `semi` and `finetune` leave behind so that a
trained model can be used on new recordings (`slim-eval predict`, `slim-eval export`).

One file per protocol, `<run>/eval/<protocol>[_<variant>][_random].classifier.pt`, a dict
of plain types and tensors (loadable with `torch.load(weights_only=True)`):

    format "slim-classifier", version 1
    protocol, variant, dataset, benchmark
    encoder    {"source": "embedded" | "reference", "config": EncoderConfig fields,
                "sha256": of the encoder file (reference) or of its weights (embedded),
                "path": absolute path of the referenced file, "relpath": the same relative
                to the classifier's folder, "state_dict": weights (embedded) or {}}
    head       {"kind": "bn_linear" (linear probe: BatchNorm without affine + Linear) |
                "linear" (fine-tuned head), "state_dict"}
    layout, class_names, pool ("cls" | "mean" | "cls+mean"), min_frames
    transform  {"name": "test_view", "out_len": 64, "crop": 0.95, "persons": 2}
    normalization (the ingest's centring rule, manifest meta `normalization`)
    config_key (sha256 of what decides the weights: reuse check), record (the result
    record of the protocol), code_version

A frozen encoder (linear probe) is stored as a reference: its file's sha256 and path (the
run's `encoder.pt`, looked up beside the classifier first); a fine-tuned or random encoder
is embedded. Loading checks every key of every section strictly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from slim.model.encoder import Encoder, EncoderConfig, encode_sample, pool_features

FORMAT = "slim-classifier"
FORMAT_VERSION = 1
TOP_KEYS = frozenset({"format", "version", "protocol", "variant", "dataset", "benchmark", "encoder",
                      "head", "layout", "class_names", "pool", "min_frames", "transform",
                      "normalization", "config_key", "record", "code_version"})
ENCODER_KEYS = frozenset({"source", "config", "sha256", "path", "relpath", "state_dict"})
HEAD_KEYS = frozenset({"kind", "state_dict"})
TRANSFORM_KEYS = frozenset({"name", "out_len", "crop", "persons"})
HEAD_KINDS = ("bn_linear", "linear")


class ClassifierError(ValueError):
    """A classifier file that cannot be used: `message` names the file, `hint` the fix."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def classifier_path(out_dir: Path, protocol: str, encoder_label: str = "trained", variant: str = "") -> Path:
    """`<out>/eval/<protocol>[_<variant>][_random|_random<seed>].classifier.pt` (the
    naming of issue 16; the random-encoder suffix as the result files')."""
    name = protocol + (f"_{variant}" if variant else "")
    if encoder_label.startswith("random"):
        seed = encoder_label.partition(":")[2] or "0"
        name += "_random" if seed == "0" else f"_random{seed}"
    return Path(out_dir) / "eval" / f"{name}.classifier.pt"


def make_head(kind: str, dim: int, num_classes: int) -> nn.Module:
    """The head module of a kind: `bn_linear` is nn.Sequential(BatchNorm1d(dim,
    affine=False), Linear(dim, C)) (the linear probe, probe.single_head); `linear` is
    Linear(dim, C) (the fine-tuning head, finetune.Classifier)."""
    if kind == "bn_linear":
        return nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, num_classes))
    if kind == "linear":
        return nn.Linear(dim, num_classes)
    raise ValueError(f"unknown head kind {kind!r}: one of {HEAD_KINDS}")


class ClassifierNet(nn.Module):
    """Encoder + pooling + head: `forward(x [B, M, T, V, C], person_mask bool [B, M])` ->
    logits [B, num_classes]. Features are averaged over present persons (encode_sample:
    absent persons are not encoded), the head's input is [B, F] with F = D or 2D."""

    def __init__(self, encoder: Encoder, head: nn.Module, pool: str):
        super().__init__()
        self.encoder, self.head, self.pool = encoder.eval(), head.eval(), pool

    def features(self, x: torch.Tensor, person_mask: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, F] averaged over present persons."""
        return encode_sample(self.encoder, x, person_mask, self.pool)

    def forward(self, x: torch.Tensor, person_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x, person_mask))


class StaticClassifierNet(nn.Module):
    """The same function as ClassifierNet without data-dependent indexing (for ONNX):
    every person slot is encoded and absent ones are weighted out. x float32 [B, M, T, V,
    C], person_mask bool [B, M] -> (logits [B, C], probabilities [B, C]), or features
    [B, F] when `encoder_only`. A sample without any present person gives zeros features
    (encode_sample raises instead)."""

    def __init__(self, net: ClassifierNet, encoder_only: bool = False):
        super().__init__()
        self.net, self.encoder_only = net, encoder_only
        head = net.head
        # The probe's BatchNorm (eval: running statistics, no affine) as explicit ops: the
        # exporter cannot size a batch_norm whose feature axis it traced as dynamic.
        self.bn = head[0] if isinstance(head, nn.Sequential) else None
        self.linear = head[1] if isinstance(head, nn.Sequential) else head

    def forward(self, x: torch.Tensor, person_mask: torch.Tensor):
        b, m = x.shape[0], x.shape[1]
        f = pool_features(self.net.encoder(x.flatten(0, 1)), self.net.pool)   # [B*M, F]
        f = f.reshape(b, m, -1)
        w = person_mask.to(f.dtype)                                            # [B, M]
        feats = (f * w[:, :, None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0)
        if self.encoder_only:
            return feats
        z = feats
        if self.bn is not None:
            z = (z - self.bn.running_mean) * torch.rsqrt(self.bn.running_var + self.bn.eps)
        logits = self.linear(z)
        return logits, torch.softmax(logits, dim=-1)


@dataclass
class SavedClassifier:
    """A loaded classifier file: the runnable `net` (eval mode, CPU) and what it needs
    to be fed right (layout, transform, class names, minimum length)."""
    path: Path
    net: ClassifierNet
    protocol: str
    variant: str
    dataset: str
    benchmark: str
    layout: str
    class_names: list[str]
    pool: str
    min_frames: int             # fewer present frames than this: refused (one temporal patch)
    transform: dict             # {"name": "test_view", "out_len", "crop", "persons"}
    normalization: str
    config_key: str
    record: dict
    encoder_sha256: str
    encoder_source: str         # embedded | reference

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _plain(obj):
    """A JSON round trip: only plain types stay (what weights_only loading accepts)."""
    return json.loads(json.dumps(obj, default=str))


def state_sha256(state: dict) -> str:
    """sha256 over the names, shapes and bytes of a state dict (identifies embedded weights)."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}:{list(t.shape)}:{t.dtype}\n".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def save_classifier(path: Path, *, encoder: Encoder, head: nn.Module, head_kind: str, pool: str,
                    protocol: str, variant: str, dataset: str, benchmark: str, meta: dict,
                    record: dict, config_key: str, encoder_file: Path | None = None,
                    encoder_sha256: str | None = None, transform: dict | None = None) -> Path:
    """Write a classifier file atomically (temporary name + rename).

    encoder_file/encoder_sha256: given for a frozen encoder kept in a file (stored as a
    reference); None embeds the encoder's weights. meta: the dataset's manifest metadata
    (`layout`, `class_names`, `normalization`). Raises ValueError for an unknown head kind
    or class names that do not match the head's output size."""
    from slim.ingest.versions import code_version
    from slim.pipeline.config import PipelineConfig
    if head_kind not in HEAD_KINDS:
        raise ValueError(f"unknown head kind {head_kind!r}: one of {HEAD_KINDS}")
    path = Path(path)
    head_state = {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
    class_names = [str(c) for c in (meta.get("class_names") or [])]
    out_features = [v.shape[0] for k, v in head_state.items() if k.endswith("bias")][-1]
    if len(class_names) != out_features:
        class_names = class_names or [f"class {i}" for i in range(out_features)]
        if len(class_names) != out_features:
            raise ValueError(f"{len(class_names)} class names for a head of {out_features} outputs")
    if encoder_file is not None:
        enc = {"source": "reference", "config": dataclasses.asdict(encoder.cfg),
               "sha256": encoder_sha256, "path": str(Path(encoder_file).resolve()),
               "relpath": os.path.relpath(Path(encoder_file).resolve(), path.parent.resolve()),
               "state_dict": {}}
    else:
        state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
        enc = {"source": "embedded", "config": dataclasses.asdict(encoder.cfg),
               "sha256": state_sha256(state), "path": "", "relpath": "", "state_dict": state}
    pc = PipelineConfig()
    payload = {
        "format": FORMAT, "version": FORMAT_VERSION, "protocol": protocol, "variant": variant,
        "dataset": str(dataset), "benchmark": str(benchmark), "encoder": enc,
        "head": {"kind": head_kind, "state_dict": head_state},
        "layout": str(meta.get("layout") or default_layout()), "class_names": class_names,
        "pool": pool, "min_frames": int(encoder.cfg.patch_t),
        "transform": transform or {"name": "test_view", "out_len": int(pc.global_len),
                                   "crop": float(pc.test_crop), "persons": 2},
        "normalization": str(meta.get("normalization") or ""),
        "config_key": config_key, "record": _plain(record), "code_version": code_version(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def default_layout() -> str:
    """The layout name ingest writes for the raw NTU / PKU-MMD files (Kinect v2, 25 joints):
    `ntu25` (classifiers saved before layouts were registered say `kinect-v2-25`, an
    alias of it; compare with topology.canonical_name)."""
    from slim.ingest.topology import NTU25
    return NTU25.name


def _check_keys(path: Path, section: str, got, expected: frozenset) -> None:
    if not isinstance(got, dict):
        raise ClassifierError(f"{path}: section {section!r} is not a dict", _REWRITE)
    missing, unexpected = sorted(expected - set(got)), sorted(set(got) - expected)
    if missing or unexpected:
        raise ClassifierError(f"{path}: {section} keys do not match format {FORMAT} v{FORMAT_VERSION}: "
                              f"missing {missing}, unexpected {unexpected}", _REWRITE)


_REWRITE = "re-create it with `slim-eval linear|semi|finetune` (this code version)"


def _find_encoder(path: Path, enc: dict) -> Path:
    """The referenced encoder file whose sha256 matches: beside the classifier first
    (relpath), then the absolute path recorded at save time."""
    from slim.ingest.work import file_sha256
    tried = []
    for cand in (path.parent / enc["relpath"], Path(enc["path"])):
        if cand in tried:
            continue
        tried.append(cand)
        if cand.is_file() and file_sha256(cand) == enc["sha256"]:
            return cand
    raise ClassifierError(
        f"{path}: its frozen encoder (sha256 {enc['sha256'][:12]}) is not at "
        f"{' or '.join(str(t) for t in tried)} (missing, or re-exported since)",
        "keep the classifier inside its run folder beside encoder.pt, or re-run "
        "`slim-eval linear` to train a head for the current encoder")


def load_classifier(path: str | os.PathLike) -> SavedClassifier:
    """Read and check a classifier file; build its network (eval mode, CPU).

    Raises ClassifierError (message names the file) for a missing, unreadable or
    corrupted file, another format or version, any missing or unexpected key, an encoder
    reference that cannot be resolved, or weights that do not fit the recorded config."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"{path}: no such classifier file",
                              "pass a <run>/eval/<protocol>.classifier.pt written by slim-eval linear|semi|finetune")
    try:
        with open(path, "rb") as fh:
            payload = torch.load(io.BytesIO(fh.read()), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem means a damaged file
        raise ClassifierError(f"{path}: cannot be read as a classifier file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}); it is damaged or not a "
                              f"{FORMAT} file", _REWRITE) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ClassifierError(f"{path}: not a {FORMAT} file (format {got!r})",
                              "pass a *.classifier.pt file (encoder.pt and checkpoints are not classifiers)")
    if payload.get("version") != FORMAT_VERSION:
        raise ClassifierError(f"{path}: {FORMAT} version {payload.get('version')}, this code reads "
                              f"{FORMAT_VERSION}", _REWRITE)
    _check_keys(path, "top-level", payload, TOP_KEYS)
    enc, head, tf = payload["encoder"], payload["head"], payload["transform"]
    _check_keys(path, "encoder", enc, ENCODER_KEYS)
    _check_keys(path, "head", head, HEAD_KEYS)
    _check_keys(path, "transform", tf, TRANSFORM_KEYS)
    try:
        fields = {f.name for f in dataclasses.fields(EncoderConfig)}
        unknown = sorted(set(enc["config"]) - fields)
        if unknown:
            raise ClassifierError(f"{path}: encoder config fields {unknown} are unknown to this code", _REWRITE)
        cfg = EncoderConfig(**enc["config"])
        if enc["source"] == "reference":
            from slim.model.io import load_encoder
            encoder, _meta = load_encoder(_find_encoder(path, enc))
            if encoder.cfg != cfg:
                raise ClassifierError(f"{path}: the referenced encoder's config differs from the recorded one",
                                      _REWRITE)
        elif enc["source"] == "embedded":
            encoder = Encoder(cfg)
            _load_strict(path, "encoder", encoder, enc["state_dict"])
            if state_sha256(enc["state_dict"]) != enc["sha256"]:
                raise ClassifierError(f"{path}: embedded encoder weights do not match their sha256 (damaged)",
                                      _REWRITE)
        else:
            raise ClassifierError(f"{path}: encoder source {enc['source']!r} is neither embedded nor reference",
                                  _REWRITE)
        names = [str(c) for c in payload["class_names"]]
        dim = cfg.dim * (2 if payload["pool"] == "cls+mean" else 1)
        head_mod = make_head(head["kind"], dim, len(names))
        _load_strict(path, "head", head_mod, head["state_dict"])
    except ClassifierError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise ClassifierError(f"{path}: inconsistent classifier file ({e})", _REWRITE) from None
    net = ClassifierNet(encoder.eval(), head_mod.eval(), payload["pool"]).eval()
    return SavedClassifier(
        path=path, net=net, protocol=payload["protocol"], variant=payload["variant"],
        dataset=payload["dataset"], benchmark=payload["benchmark"], layout=payload["layout"],
        class_names=names, pool=payload["pool"], min_frames=int(payload["min_frames"]),
        transform=dict(tf), normalization=payload["normalization"],
        config_key=payload["config_key"], record=payload["record"],
        encoder_sha256=enc["sha256"], encoder_source=enc["source"])


def _load_strict(path: Path, what: str, module: nn.Module, state: dict) -> None:
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ClassifierError(f"{path}: {what} weights do not match: missing {missing}, unexpected {unexpected}",
                              _REWRITE)
    bad = [f"{k} {list(state[k].shape)} != {list(v.shape)}" for k, v in expected.items()
           if state[k].shape != v.shape]
    if bad:
        raise ClassifierError(f"{path}: {what} weight shapes do not match: {bad}", _REWRITE)
    module.load_state_dict(state, strict=True)


def config_key(protocol: str, variant: str, encoder_sha256: str, data_dir: Path, benchmark: str,
               config: dict, eval_len: int = 64) -> str:
    """sha256 of what decides a classifier's weights: protocol, variant, encoder sha256,
    the data's identity (features.data_identity), benchmark and the protocol config
    without the fields that only change speed or output (batch of feature extraction,
    workers, device, cache, progress), and the test transform's length `eval_len`."""
    from .features import data_identity, transform_desc
    from .split import CARVING_VERSION
    cfg = json.loads(json.dumps(config, default=str))
    feats = cfg.get("features")
    if isinstance(feats, dict):
        cfg["features"] = {k: v for k, v in feats.items()
                           if k not in ("batch_size", "num_workers", "device", "cache", "progress")}
    for k in ("device", "num_workers", "eval_batch"):
        cfg.pop(k, None)
    key = {"format": FORMAT_VERSION, "protocol": protocol, "variant": variant,
           "encoder": encoder_sha256, "data": data_identity(Path(data_dir)), "benchmark": benchmark,
           "transform": transform_desc(eval_len), "carving": CARVING_VERSION, "config": cfg}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
