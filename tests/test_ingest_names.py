"""NTU names, missing lists and the official split rules on generated file names."""
import numpy as np

from slim.ingest import ntu_names
from slim.ingest.subsets import balanced_subset, subset_columns


def all_names(setups, performers):
    return [f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}" for s in setups for c in (1, 2, 3)
            for p in performers for r in (1, 2) for a in range(1, 61)]


def fields(names):
    f = [ntu_names.parse_name(n) for n in names]
    return {k: np.array([x[k] for x in f]) for k in ntu_names.FIELDS}


def test_missing_lists_both_header_variants():
    text = ntu_names.resource_text(ntu_names.MISSING_FILE["ntu60"])
    with_header = ntu_names.read_missing(text)
    no_header = ntu_names.read_missing("\n".join(sorted(with_header)))
    assert len(with_header) == 302 and with_header == no_header
    big = ntu_names.official_missing("ntu120")
    assert len(big) == 535 and with_header <= big
    assert 56880 - 302 == 56578 and 114480 - 535 == 113945


def test_xview_sizes_follow_from_the_missing_list():
    # every (setup, performer, replication, action) is filmed by cameras 1, 2 and 3, so
    # X-View test = 56,880 / 3 minus the missing camera-1 names (PROTOCOLS.md sizes).
    miss = fields(sorted(ntu_names.official_missing("ntu60")))
    assert 56880 // 3 - int((miss["camera"] == 1).sum()) == 18932
    assert 56880 * 2 // 3 - int((miss["camera"] != 1).sum()) == 37646


def test_split_rules_on_generated_names():
    missing = ntu_names.official_missing("ntu60")
    names = [n for n in all_names(range(2, 18, 3), range(1, 41)) if n not in missing]
    f = fields(names)
    s = ntu_names.split_columns("ntu60", f["setup"], f["camera"], f["performer"])
    assert (s["xsub_train"] ^ s["xsub_test"]).all() and (s["xview_train"] ^ s["xview_test"]).all()
    assert set(f["performer"][s["xsub_train"]]) == ntu_names.XSUB_TRAIN_60
    assert set(f["camera"][s["xview_test"]]) == {1}
    s120 = ntu_names.split_columns("ntu120", f["setup"], f["camera"], f["performer"])
    assert set(f["setup"][s120["xset_train"]]) == {2, 8, 14}
    assert "xview_train" not in s120 and ntu_names.parse_name("S001C001P001R001A01") is None


def test_class_names():
    assert len(ntu_names.class_names("ntu60")) == 60
    n120 = ntu_names.class_names("ntu120")
    assert len(n120) == 120 and n120[0] == "drink water"


def test_balanced_subsets():
    labels = np.repeat(np.arange(3), [250, 40, 5])
    member = np.ones(len(labels), bool)
    m = balanced_subset(labels, member, 0.01, np.random.default_rng(42))
    assert np.bincount(labels[m]).tolist() == [2, 1, 1]
    cols = subset_columns(labels, {"xsub_train": member}, ("xsub",))
    again = subset_columns(labels, {"xsub_train": member}, ("xsub",))
    assert np.bincount(labels[cols["xsub_train_10pct"]]).tolist() == [25, 4, 1]
    assert all((cols[k] == again[k]).all() for k in cols)
