"""`slim-eval predict`: a saved classifier on new recordings. Every input sequence gets the
classifier's own test transform (test_view: centre crop, resampled to `out_len` frames,
up to 2 persons), is classified in batches, and becomes a row with its top-k classes.
Long recordings (`window`) are classified window by window and the windows are merged
into segments (segments.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from slim.ingest.ntu_reader import BadFile
from slim.pipeline.views import frames_present, test_view

from .classifier import SavedClassifier
from .common import pick_device
from .predict_inputs import (Discovery, Item, PredictInputError, Skipped, data_items, raw_layout,
                             whole_item, window_items)
from .segments import Segment, merge_windows


@dataclass(frozen=True)
class PredictConfig:
    top_k: int = 5
    batch_size: int = 64
    device: str = "cpu"           # auto | cpu | cuda | cuda:N
    split: str | None = None      # manifest column of an ingested folder (None: every row)
    window: int | None = None     # frames per window for long recordings (None: whole files)
    stride: int | None = None     # frames between windows (None: window // 2)
    min_segment: int | None = None  # shortest merged segment in frames (None: window // 2)
    min_score: float = 0.0        # segments with a lower mean probability are dropped


@dataclass
class Prediction:
    """Rows in input order: ids, sources, labels (None = unknown), probabilities float32
    [N, C]; for windows, video/start/end (1-based inclusive frames) and the merged
    segments per video; what was skipped and why."""
    class_names: list[str]
    ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)
    videos: list[str | None] = field(default_factory=list)
    starts: list[int | None] = field(default_factory=list)
    ends: list[int | None] = field(default_factory=list)
    probs: np.ndarray | None = None
    segments: dict[str, list[Segment]] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(class indices int64 [N, k], probabilities float32 [N, k]), best first."""
        k = min(k, len(self.class_names))
        p = torch.from_numpy(self.probs)
        v, i = torch.topk(p, k, dim=1)
        return i.numpy(), v.numpy()

    def labelled(self) -> np.ndarray:
        """Positions of the rows whose true label is known, int64 [L]."""
        return np.asarray([i for i, y in enumerate(self.labels) if y is not None], dtype=np.int64)

    def accuracy(self) -> float | None:
        """Top-1 accuracy % over the labelled rows (None without labels)."""
        idx = self.labelled()
        if idx.size == 0:
            return None
        y = np.asarray([self.labels[i] for i in idx])
        return float(100.0 * (self.probs[idx].argmax(1) == y).mean())

    def confusion(self) -> np.ndarray:
        """Counts int64 [C, C]: row = true class, column = predicted, labelled rows only."""
        c = len(self.class_names)
        m = np.zeros((c, c), dtype=np.int64)
        for i in self.labelled():
            m[self.labels[i], int(self.probs[i].argmax())] += 1
        return m


def batch_tensors(items: list[Item], out_len: int, crop: float, persons: int = 2
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Items -> (x float32 [B, persons, out_len, V, 3], person_mask bool [B, persons]):
    the test transform and the eval collate of the pipeline (collate_eval)."""
    views = [test_view(it.joints, out_len, crop) for it in items]
    v, c = views[0].shape[2:]
    x = np.zeros((len(items), persons, out_len, v, c), dtype=np.float32)
    for i, t in enumerate(views):
        x[i, :t.shape[0]] = t[:persons]
    return torch.from_numpy(x), torch.from_numpy(np.any(x != 0, axis=(2, 3, 4)))


@torch.no_grad()
def classify(model: SavedClassifier, items: Iterable[Item], batch_size: int,
             device: torch.device, on_batch: Callable[[int], None] | None = None
             ) -> Iterator[tuple[list[Item], np.ndarray]]:
    """Yield (items, probabilities float32 [b, C]) batch by batch."""
    net = model.net.to(device).eval()
    tf = model.transform
    batch: list[Item] = []

    def run(b):
        x, pm = batch_tensors(b, int(tf["out_len"]), float(tf["crop"]), int(tf["persons"]))
        p = torch.softmax(net(x.to(device), pm.to(device)).float(), dim=-1).cpu().numpy()
        if on_batch:
            on_batch(len(b))
        return b, p

    for it in items:
        batch.append(it)
        if len(batch) == batch_size:
            yield run(batch)
            batch = []
    if batch:
        yield run(batch)


def check_model_for(model: SavedClassifier, layout: str, num_classes: int | None, what: str) -> None:
    """Raise PredictInputError when `what` (a data folder, raw files) has another skeleton
    layout or another number of classes than the model (layout names compared after
    resolving old aliases: `kinect-v2-25` is `ntu25`)."""
    from slim.ingest.topology import canonical_name
    if canonical_name(layout) != canonical_name(model.layout):
        raise PredictInputError(
            f"{model.path}: the model is for skeleton layout {model.layout!r}, {what} is {layout!r}",
            "use a classifier trained on data of the same layout (same joints in the same order)")
    if num_classes is not None and num_classes != model.num_classes:
        raise PredictInputError(
            f"{model.path}: the model has {model.num_classes} classes, {what} has {num_classes}",
            "use a classifier trained on this dataset's classes (e.g. an ntu60 model for ntu60 data)")


def enough_frames(item: Item, min_frames: int) -> str | None:
    """None when the item has at least `min_frames` frames with a person, else the reason."""
    n = int(frames_present(item.joints.transpose(1, 0, 2, 3)).any(axis=0).sum())
    if n < min_frames:
        return (f"only {n} frames with a person; the model needs at least {min_frames} "
                "(one temporal patch)")
    return None


def predict(model: SavedClassifier, found: Discovery, cfg: PredictConfig,
            on_batch: Callable[[int], None] | None = None) -> Prediction:
    """Classify every discovered input. Bad files and too-short sequences are skipped
    and listed in `Prediction.skipped`. Raises PredictInputError when the model does not
    fit the data (layout, class count) or windows are asked of an ingested folder."""
    out = Prediction(class_names=list(model.class_names), skipped=list(found.skipped))
    raw = [s for s in found.sources if s.kind != "data"]
    data = [s for s in found.sources if s.kind == "data"]
    if raw:
        check_model_for(model, raw_layout(), None, "raw NTU / PKU-MMD files (Kinect v2, 25 joints)")
    if data and cfg.window:
        raise PredictInputError(f"{data[0].path}: --window needs raw recordings, not an ingested folder",
                                "pass the raw PKU-MMD skeleton files (whole videos) with --window")
    streams: list[Iterable[Item]] = []
    for src in data:
        items, _n, meta = data_items(src.path, cfg.split)
        check_model_for(model, str(meta.get("layout") or raw_layout()), int(meta.get("num_classes") or 0),
                        f"{src.path} ({meta.get('dataset')})")
        streams.append(items)
    streams.append(_raw_items(model, raw, cfg, out.skipped, out.frames))
    probs = []
    for stream in streams:
        for items, p in classify(model, _checked(stream, model.min_frames, out.skipped),
                                 cfg.batch_size, pick_device(cfg.device), on_batch):
            for it in items:
                out.ids.append(it.id)
                out.sources.append(it.source)
                out.labels.append(it.label)
                out.videos.append(it.video if cfg.window else None)
                out.starts.append(it.start if cfg.window else None)
                out.ends.append(it.end if cfg.window else None)
            probs.append(p)
    out.probs = np.concatenate(probs) if probs else np.zeros((0, model.num_classes), np.float32)
    if cfg.window:
        min_len = cfg.min_segment if cfg.min_segment is not None else max(1, cfg.window // 2)
        for video, frames in out.frames.items():
            rows = [i for i, v in enumerate(out.videos) if v == video]
            out.segments[video] = merge_windows(
                [(out.starts[i], out.ends[i]) for i in rows], out.probs[rows], frames,
                min_len=min_len, min_score=cfg.min_score)
    return out


def _raw_items(model: SavedClassifier, raw, cfg: PredictConfig, skipped: list,
               frames: dict) -> Iterator[Item]:
    for src in raw:
        try:
            if cfg.window:
                stride = cfg.stride or max(1, cfg.window // 2)
                items, n, empty = window_items(src, cfg.window, stride, model.min_frames)
                if not items:
                    skipped.append(Skipped(str(src.path), f"no window of {cfg.window} frames has "
                                                          f"{model.min_frames} frames with a person"))
                    continue
                frames[src.path.stem] = n
                yield from items
            else:
                yield whole_item(src, model.num_classes)
        except BadFile as e:
            skipped.append(Skipped(str(src.path), f"not a readable {src.kind.upper()} skeleton file: {e}"))
        except OSError as e:
            skipped.append(Skipped(str(src.path), f"cannot read: {e}"))


def _checked(items: Iterable[Item], min_frames: int, skipped: list) -> Iterator[Item]:
    for it in items:
        why = enough_frames(it, min_frames)
        if why is None:
            yield it
        else:
            skipped.append(Skipped(f"{it.source} [{it.id}]" if it.id not in it.source else it.source, why))
