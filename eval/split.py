"""Honest model selection (DESIGN.md decision 9): a validation part carved from the
training split, stratified by class, from a fixed seed, so hyper-parameters and epochs
are chosen without touching the test split."""
from __future__ import annotations

import numpy as np


def carve_validation(labels: np.ndarray, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of positions 0..N-1 into (fit, val).

    labels int [N]. Per class, round(fraction * n_c) samples go to val, at least one when
    the class has two or more samples and fraction > 0, and never all of a class (each
    class keeps one training sample). Returns (fit int64 [N - n_val], val int64 [n_val]),
    both sorted ascending.
    """
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1); got {fraction}")
    val = []
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        n_val = int(round(fraction * len(pos)))
        if fraction > 0 and len(pos) >= 2:
            n_val = max(1, n_val)
        n_val = min(n_val, len(pos) - 1)
        if n_val > 0:
            val.append(rng.choice(pos, size=n_val, replace=False))
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    fit = np.setdiff1d(np.arange(len(labels)), val)
    return fit.astype(np.int64), val.astype(np.int64)


# --- what a protocol selects on, and how the validation part was carved ---------------

#: Benchmarks whose validation part is carved by whole performers (no performer on both
#: sides; a class-stratified carving puts the same people in fit and val, and validation
#: accuracy then runs several points above test, where the performers are new).
GROUPED = {"xsub": "performer", "xview": "recording"}

#: Manifest columns that identify one recording seen by several cameras (X-View trains on
#: some cameras of the same takes: a class-stratified carving puts a take's other view in
#: fit, and validation accuracy saturates; issue 13). NTU / synthetic: setup, performer,
#: replication, action; NW-UCLA: action, subject, episode.
RECORDING_COLUMNS = ("setup", "performer", "subject", "episode", "replication", "action")

#: Changes whenever a protocol's validation carving changes, so that classifiers trained
#: under an older carving are not reused (classifier.config_key).
CARVING_VERSION = 2


class SelectionError(ValueError):
    """A selection that cannot be made honestly: message + `hint` (the user's options)."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def carve_grouped(groups: np.ndarray, fraction: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, list]:
    """Whole groups (performers) to validation, in a seeded random order, until at least
    `fraction` of the samples are there; never every group. groups [N] (any dtype).
    Returns (fit int64 [.], val int64 [.], the validation groups, sorted)."""
    uniq = np.unique(groups)
    order = rng.permutation(uniq)
    target, n, chosen = fraction * len(groups), 0, []
    for g in order[:-1]:
        if chosen and n >= target:
            break
        chosen.append(g)
        n += int((groups == g).sum())
    val = np.flatnonzero(np.isin(groups, chosen)).astype(np.int64)
    fit = np.setdiff1d(np.arange(len(groups)), val).astype(np.int64)
    return fit, val, sorted(v.item() if hasattr(v, "item") else v for v in chosen)


def validation_groups(data_dir, benchmark: str, index: np.ndarray) -> tuple[str, np.ndarray] | None:
    """(name, group of each sample [N]) for benchmarks carved by whole groups (GROUPED),
    read from the manifest rows `index` (int64 [N]); None for other benchmarks. X-Sub: NTU
    and synthetic: the `performer` column; PKU-MMD: the subject Nyy of video AxxNyy-V.
    X-View: the recording (RECORDING_COLUMNS; PKU-MMD: the video without its view), so
    that no take is on both sides through its other camera."""
    name = GROUPED.get(benchmark)
    if name is None:
        return None
    from slim.ingest.manifest import read_manifest
    table, _ = read_manifest(data_dir)
    if name == "recording":
        cols = [c for c in RECORDING_COLUMNS if c in table.column_names]
        if len(cols) >= 2:
            parts = [np.asarray(table.column(c).to_pylist(), dtype=object).astype(str) for c in cols]
            col = np.asarray(["/".join(t) for t in zip(*parts)], dtype=object)
        elif "video" in table.column_names:
            col = np.asarray([str(v).rsplit("-", 1)[0] for v in table.column("video").to_pylist()], dtype=object)
        else:
            return None
        return name, col[np.asarray(index, dtype=np.int64)]
    if "performer" in table.column_names:
        col = np.asarray(table.column("performer").to_numpy())
    elif "video" in table.column_names:
        col = np.asarray([v[3:6] for v in table.column("video").to_pylist()], dtype=object)
    else:
        return None
    return name, col[np.asarray(index, dtype=np.int64)]


def plan_selection(labels: np.ndarray, select_on: str, fraction: float, seed: int,
                   groups: tuple[str, np.ndarray] | None = None) -> tuple[str, np.ndarray, np.ndarray, dict]:
    """How a protocol chooses its epoch / hyper-parameters, over a training split with
    labels int [N]. Returns (selection, fit, val, record) where selection is

    - "val": a validation part carved from the training split (grouped by performer for
      X-Sub when `groups` has >= 2 of them, else stratified by class); fit/val positions;
    - "test": the papers' protocol (best test epoch): fit = everything, val empty;
    - "last": `--val-fraction 0`: no validation part, the last epoch (and one fixed
      learning rate) is reported: fit = everything, val empty.

    `record` ({how, ...}) goes into the result file. Raises SelectionError when the
    validation part would be empty (e.g. one training sample per class)."""
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise SelectionError(f"--val-fraction {fraction}: must be in [0, 1)",
                             "use e.g. --val-fraction 0.1, or 0 for no validation part")
    everything = np.arange(len(labels), dtype=np.int64)
    none = np.zeros(0, np.int64)
    if select_on == "test":
        return "test", everything, none, {"how": "none: selection on the test split (papers' protocol)"}
    if select_on != "val":
        raise ValueError(f"select_on must be 'val' or 'test', got {select_on!r}")
    if fraction == 0:
        return "last", everything, none, {
            "how": "none: --val-fraction 0, the whole training split is trained on and the last "
                   "epoch is reported (no selection)"}
    rng = np.random.default_rng(seed)
    grouped = None
    if groups is not None and len(np.unique(groups[1])) >= 2:
        name, g = groups
        fit, val, chosen = carve_grouped(g, fraction, rng)
        # a class whose every sample went to validation could not be learnt: carve by class
        if set(np.unique(labels).tolist()) <= set(np.unique(labels[fit]).tolist()):
            grouped = {"how": f"grouped by {name}: no {name} on both sides", f"val_{name}s": chosen}
    if grouped is not None:
        record = grouped
    else:
        rng = np.random.default_rng(seed)
        fit, val = carve_validation(labels, fraction, rng)
        why = ""
        if groups is not None:
            why = (f" (only one {groups[0]} in the training split)" if len(np.unique(groups[1])) < 2
                   else f" (whole {groups[0]}s would leave a class without training samples)")
        record = {"how": "stratified by class" + why}
    if len(val) == 0:
        n_cls = len(np.unique(labels))
        raise SelectionError(
            f"the validation part carved from the training split is empty ({len(labels)} training "
            f"samples, {n_cls} classes, at most one sample per class: nothing can be set aside)",
            "use --val-fraction 0 (train on the whole split, report the last epoch), --select-on test "
            "(the papers' protocol), or a dataset with more training samples per class")
    record.update({"fraction_requested": fraction, "seed": seed, "fit_size": int(len(fit)),
                   "val_size": int(len(val)), "classes": int(len(np.unique(labels))),
                   "classes_in_val": int(len(np.unique(labels[val]))),
                   "classes_in_fit": int(len(np.unique(labels[fit])))})
    return "val", fit, val, record


def check_classes(train_labels: np.ndarray, test_labels: np.ndarray, class_names: list[str] | None,
                  benchmark: str) -> None:
    """Raise SelectionError when the test split holds a class with no training sample (no
    classifier can learn it; the accuracy would be capped without saying so)."""
    absent = sorted(set(np.asarray(test_labels).tolist()) - set(np.asarray(train_labels).tolist()))
    if not absent:
        return
    names = [f"{c + 1}" + (f" ({class_names[c]})" if class_names and c < len(class_names) else "")
             for c in absent[:5]]
    raise SelectionError(
        f"{len(absent)} class(es) of the {benchmark} test split have no training sample: "
        f"{', '.join(names)}{' ...' if len(absent) > 5 else ''}",
        "ingest the full dataset (every class needs training samples), or evaluate on a "
        "benchmark whose training split covers the test classes")
