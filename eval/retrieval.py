"""The retrieval protocol: k-NN of test-split features against the training split
(gallery), cosine on L2-normalised features, DINO-weighted votes for k > 1. There is no
hyper-parameter to select, so the test split is used once by construction."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .common import FeatureOptions, pick_device, split_features
from .features import transform_desc
from .detail import class_detail, knn_scores
from .knn import topk_neighbours
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
    if not cfg.ks or min(cfg.ks) < 1:
        raise ValueError(f"k must be >= 1; got {list(cfg.ks)}")
    sims, idx = topk_neighbours(test.x.to(device), train.x.to(device), max(cfg.ks),
                                query_chunk=cfg.query_chunk, gallery_chunk=cfg.gallery_chunk)
    nb_labels = train.y.to(device).long()[idx]                   # [Q, K]
    names = list(target.meta.get("class_names") or [])
    acc, detail = {}, {}
    for k in cfg.ks:
        # knn_scores is knn.knn_vote's rule as class scores: its argmax is the vote.
        scores = knn_scores(sims, nb_labels, min(k, idx.shape[1]), target.num_classes, cfg.temperature)
        acc[k] = 100.0 * (scores.argmax(1).cpu() == test.y.long()).float().mean().item()
        detail[f"k{k}"] = class_detail(scores, test.y, target.num_classes, names)
    metrics = {f"top1_k{k}": v for k, v in acc.items()}
    metrics.update({f"top5_k{k}": detail[f"k{k}"]["top5"] for k in cfg.ks})
    if 1 in acc:
        metrics["top1"] = acc[1]
    settings = {"k": list(cfg.ks), "pool": cfg.features.pool}
    path = target_result_path(target, "retrieval", settings=settings)
    record = write_result(path, protocol="retrieval", selection="none", dataset=target.dataset,
                          settings=settings,
                          benchmark=target.benchmark,
                          split_sizes={"gallery": len(train.ids), "query": len(test.ids)},
                          metrics=metrics, config=cfg, encoder=target.encoder_record(),
                          extra={"data": str(target.data_dir), "transform": transform_desc(target.eval_len),
                                 "eval_len": target.eval_len, "detail": detail})
    return record, path

