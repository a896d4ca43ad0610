"""Protocols never record a selection they did not make: X-Sub validation by whole
performers, `--val-fraction 0` = selection "last", empty validation parts refused."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from slim.eval.cli import main as cli
from slim.eval.split import SelectionError, check_classes, plan_selection
from slim.ingest.manifest import read_manifest

from test_eval_protocols import world  # noqa: F401 - the shared tiny run + dataset


def test_xsub_validation_is_grouped_by_performer():
    rng = np.random.default_rng(0)
    performers = np.repeat(np.arange(1, 11), 30)
    labels = rng.integers(0, 6, size=performers.size)
    sel, fit, val, rec = plan_selection(labels, "val", 0.1, seed=3, groups=("performer", performers))
    assert sel == "val" and rec["how"].startswith("grouped by performer")
    assert not set(performers[fit]) & set(performers[val])
    assert sorted(set(performers[val].tolist())) == rec["val_performers"]
    assert len(fit) + len(val) == len(labels) and rec["val_size"] == len(val) >= 0.1 * len(labels)
    again = plan_selection(labels, "val", 0.1, seed=3, groups=("performer", performers))
    assert np.array_equal(again[2], val)                            # the seed fixes the carving
    other = plan_selection(labels, "val", 0.1, seed=4, groups=("performer", performers))
    assert not np.array_equal(other[2], val)


def test_one_performer_falls_back_to_class_strata_and_says_so():
    labels = np.repeat(np.arange(4), 5)
    sel, fit, val, rec = plan_selection(labels, "val", 0.2, 0, groups=("performer", np.ones(20, int)))
    assert sel == "val" and "stratified by class (only one performer" in rec["how"]
    assert sorted(set(labels[val].tolist())) == [0, 1, 2, 3]


def test_no_validation_possible_is_refused_and_zero_means_last():
    labels = np.arange(5)                       # one sample per class
    with pytest.raises(SelectionError, match="empty") as e:
        plan_selection(labels, "val", 0.1, 0)
    assert "--val-fraction 0" in e.value.hint and "--select-on test" in e.value.hint
    sel, fit, val, rec = plan_selection(labels, "val", 0.0, 0)
    assert sel == "last" and len(fit) == 5 and len(val) == 0 and "last epoch" in rec["how"]
    assert plan_selection(labels, "test", 0.1, 0)[0] == "test"
    with pytest.raises(SelectionError, match="no training sample"):
        check_classes(np.array([0, 1]), np.array([1, 2]), ["a", "b", "c"], "xsub")


def test_result_files_record_the_selection_made(world):  # noqa: F811
    _, data, run = world
    r = CliRunner().invoke(cli, ["linear", "--run", str(run), "--epochs", "2", "--device", "cpu",
                                 "--no-progress", "--feature-batch", "16"])
    assert r.exit_code == 0, r.output
    rec = json.loads((run / "eval" / "linear_synthetic_xsub_cls+mean_sel-val.json").read_text())
    v = rec["validation"]
    assert rec["selection"] == "val" and v["how"].startswith("grouped by performer")
    table, _ = read_manifest(data)
    train = np.asarray(table.column("xsub_train").to_numpy(zero_copy_only=False), bool)
    perf = np.asarray(table.column("performer").to_numpy())[train]
    assert rec["split_sizes"]["val"] == int(np.isin(perf, v["val_performers"]).sum())
    assert rec["split_sizes"]["train"] == int((~np.isin(perf, v["val_performers"])).sum())
    r = CliRunner().invoke(cli, ["linear", "--run", str(run), "--epochs", "2", "--device", "cpu",
                                 "--no-progress", "--val-fraction", "0"])
    assert r.exit_code == 0, r.output
    rec = json.loads((run / "eval" / "linear_synthetic_xsub_cls+mean_sel-last.json").read_text())
    assert rec["selection"] == "last" and "val" not in rec["split_sizes"]
    assert rec["metrics"]["lr"] == 0.1 and rec["metrics"]["epoch"] == 2 and "val_top1" not in rec["metrics"]
    assert rec["validation"]["how"].startswith("none: --val-fraction 0")
