"""Issue 13: evaluation resampled every sequence to 64 frames, even for an encoder trained
on 32-frame global views (a 31-frame real sequence was then stretched to twice the speed
the encoder learnt). The test view's length is now the encoder's trained global length,
for the trained and the random encoder alike, and the result files record it."""
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slim.eval import api  # noqa: E402
from slim.eval.features import cache_key, extract_features, transform_desc  # noqa: E402
from slim.eval.target import resolve_target, trained_global_len  # noqa: E402
from slim.train.config import resolve, to_toml  # noqa: E402

from eval_world import make_eval_world  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("lenworld")
    data, run = make_eval_world(root)
    return root, data, run


def test_trained_length_comes_from_the_encoder_file_then_the_run(tmp_path):
    assert trained_global_len({"global_len": 24}, None) == 24
    assert trained_global_len({}, None) == 64                     # nothing known: the paper's 64
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(to_toml(resolve("cpu-real")))
    assert trained_global_len({}, run) == resolve("cpu-real").pipeline.global_len == 32
    assert trained_global_len({"global_len": 16}, run) == 16      # the file wins


def test_evaluation_uses_and_records_the_trained_length(world):
    root, data, run = world
    run32 = root / "runs" / "r32"
    shutil.copytree(run, run32)
    (run32 / "config.toml").write_text(to_toml(resolve("cpu-smoke", cli_overrides={"pipeline.global_len": 32})))
    for enc in ("trained", "random:0"):
        assert resolve_target(run32, None if enc == "trained" else enc).eval_len == 32
        rec = api.retrieval(run32, encoder=enc, device="cpu")
        assert rec["eval_len"] == 32 and "32 frames" in rec["transform"]
    assert api.retrieval(run, device="cpu")["eval_len"] == 64     # a run without config.toml
    # the features really are computed from 32-frame views, and cached apart from 64
    t = resolve_target(run32)
    f32 = extract_features(t.encoder, data, "xsub_test", out_len=32, progress=False)
    f64 = extract_features(t.encoder, data, "xsub_test", out_len=64, progress=False)
    assert (f32.x - f64.x).abs().max() > 1e-4
    assert cache_key("s", data, "xsub_test", "cls", 32) != cache_key("s", data, "xsub_test", "cls", 64)
    assert transform_desc(32) != transform_desc(64)
    saved = json.loads(Path(rec["path"]).read_text())
    assert saved["eval_len"] == 32


def test_xview_validation_keeps_each_take_on_one_side(world):
    """Issue 13: X-View trains on several cameras of the same takes; a class-stratified
    validation part had each validation take's other camera in the fit part (NW-UCLA:
    validation accuracy saturated, equal for random and pretrained encoders). The carving
    is now by recording."""
    import numpy as np

    from slim.eval.features import split_rows
    from slim.eval.split import plan_selection, validation_groups
    _, data, _ = world
    idx, y, ids = split_rows(data, "xview_train")
    name, g = validation_groups(data, "xview", idx)
    assert name == "recording"
    take = np.asarray([i[:4] + i[8:] for i in ids])           # SsssCcccPpppRrrrAaaa without Cccc
    for t in np.unique(take):                                 # one group per take, cameras merged
        assert len(set(g[take == t])) == 1
    assert len(np.unique(g)) == len(np.unique(take)) < len(ids)
    sel, fit, val, rec = plan_selection(y, "val", 0.2, 0, (name, g))
    assert sel == "val" and "recording" in rec["how"]
    assert not set(g[fit]) & set(g[val])
