"""`make demo`'s promise, checked end to end (slow: about 9 minutes on 2 cores; run with
`make test-slow`): on synthetic X-Sub the pretrained encoder beats a randomly initialised
encoder of the same architecture by at least 10 points in retrieval k=1 and in linear
accuracy."""
import json

import pytest


@pytest.mark.slow
def test_demo_pretraining_beats_random_by_ten_points(tmp_path, monkeypatch):
    from slim.eval.demo import SIZES, run_demo

    monkeypatch.chdir(tmp_path)  # raw/, data/ and runs/ of a fresh clone
    summary = run_demo(SIZES["small"])
    on_disk = json.loads((tmp_path / "runs" / "demo" / "summary.json").read_text())
    assert on_disk["pretrained"] == summary["pretrained"]
    for metric in ("retrieval_k1", "linear"):
        margin = summary["pretrained"][metric] - summary["random"][metric]
        assert margin >= 10, (metric, summary)
