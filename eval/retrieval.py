"""The retrieval protocol: k-NN of test-split features against the training split
(gallery), cosine on L2-normalised features, DINO-weighted votes for k > 1. There is no
hyper-parameter to select, so the test split is used once by construction."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .common import FeatureOptions, pick_device, split_features
from .features import TRANSFORM
from .knn import knn_accuracy
from .results import target_result_path, write_result
from .target import EvalTarget


@dataclass(frozen=True)
class RetrievalConfig:
    ks: tuple[int, ...] = (1, 10, 20)
    temperature: float = 0.07     # DINO vote weighting exp(sim / T)
    query_chunk: int = 4096       # queries per block (memory ~ query_chunk x gallery_chunk)
    gallery_chunk: int = 16384
    features: FeatureOptions = FeatureOptions()


def run_retrieval(target: EvalTarget, cfg: RetrievalConfig) -> tuple[dict, Path]:
    """Evaluate, write `<out>/eval/retrieval_<dataset>_<bench>_k<ks>_<pool>[_<encoder>].json`
    (and a line of eval/results.jsonl); returns (record, path)."""
    train = split_features(target, "train", cfg.features)
    test = split_features(target, "test", cfg.features)
    device = pick_device(cfg.features.device)
    acc = knn_accuracy(train.x.to(device), train.y, test.x.to(device), test.y, cfg.ks,
                       num_classes=target.num_classes, temperature=cfg.temperature,
                       query_chunk=cfg.query_chunk, gallery_chunk=cfg.gallery_chunk)
    metrics = {f"top1_k{k}": v for k, v in acc.items()}
    if 1 in acc:
        metrics["top1"] = acc[1]
    settings = {"k": list(cfg.ks), "pool": cfg.features.pool}
    path = target_result_path(target, "retrieval", settings=settings)
    record = write_result(path, protocol="retrieval", selection="none", dataset=target.dataset,
                          settings=settings,
                          benchmark=target.benchmark,
                          split_sizes={"gallery": len(train.ids), "query": len(test.ids)},
                          metrics=metrics, config=cfg, encoder=target.encoder_record(),
                          extra={"data": str(target.data_dir), "transform": TRANSFORM})
    return record, path

