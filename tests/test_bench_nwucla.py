"""The real-data benchmark's own rules (benchmarks/nwucla.py), without running it: the
supervised budget equals pretraining's samples seen, a shortened run says so, and every
figure stands next to its random-init baseline."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import nwucla  # noqa: E402


def test_supervised_budget_matches_pretraining_samples_seen():
    # cpu-demo: 420 steps x 32 = 13,440 samples; 918 fit samples -> 15 epochs (13,770)
    assert nwucla.supervised_epochs(420, 32, 918) == 15
    assert nwucla.supervised_epochs(1, 4, 1000) == 1


def test_short_run_keeps_the_preset_epochs_and_says_so():
    assert nwucla.pretrain_sets("cpu-demo", None) == []
    assert nwucla.pretrain_sets("cpu-demo", 30) == ["schedule.epoch_steps=2"]  # 21 epochs x 2 = 42 steps
    f = {"benchmark": "xview", "train_samples": 1020, "test_samples": 464, "layout": "kinect_v1_20",
         "preset": "cpu-demo", "pretrain_steps": 42, "global_batch": 32, "short_run": True,
         "random_retrieval_k1": 45.0, "random_linear": 37.5, "pretrained_retrieval_k1": 45.0,
         "pretrained_linear": 37.1, "supervised_epochs": 2, "supervised_top1": 22.6,
         "ingest_s": 6, "pretrain_s": 414, "eval_s": 46, "supervised_s": 131, "total_s": 597}
    md = nwucla.table_markdown(f)
    assert "not a result" in md and "| random init | 45.0 | 37.5 |" in md
    assert "| SLiM pretrained | 45.0 | 37.1 |" in md and "22.6" in md
    assert "not a result" not in nwucla.table_markdown({**f, "short_run": False})


def test_table_names_the_view_normalisation_when_used():
    f = {"benchmark": "xview", "train_samples": 1020, "test_samples": 464, "layout": "kinect_v1_20",
         "preset": "cpu-real", "view": "full", "pretrain_steps": 300, "global_batch": 32,
         "short_run": False, "random_retrieval_k1": 53.0, "random_linear": 63.8,
         "pretrained_retrieval_k1": 56.0, "pretrained_linear": 60.3, "supervised_epochs": 10,
         "supervised_top1": 65.5, "ingest_s": 6, "pretrain_s": 414, "eval_s": 46,
         "supervised_s": 131, "total_s": 597}
    assert "ingest --view full" in nwucla.table_markdown(f)
    assert "--view" not in nwucla.table_markdown({**f, "view": "none"})
