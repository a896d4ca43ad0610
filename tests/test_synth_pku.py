"""Synthetic PKU-MMD II: videos, label files and the split file, read back independently."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slim.ingest.synth import SynthConfig, generate

CFG = SynthConfig(classes=5, performers=3, per_class=1, seed=3, format="pku")


def read_video(path: Path) -> np.ndarray:
    """Minimal independent reader: [F, 2, 25, 3] from lines of 150 floats."""
    rows = [[float(v) for v in line.split()] for line in path.read_text().split("\n") if line.strip()]
    assert all(len(r) == 150 for r in rows)
    return np.array(rows).reshape(-1, 2, 25, 3)


def read_split(path: Path) -> dict[str, list[str]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "Training videos:" and lines[2] == "Validataion videos:"
    return {"train": [n.strip() for n in lines[1].split(",")], "test": [n.strip() for n in lines[3].split(",")]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("pku")
    return out, generate(out, CFG, progress=False)


def test_videos_parse_and_labels_lie_inside(dataset):
    out, _ = dataset
    videos = sorted((out / "skeleton").glob("*.txt"))
    assert len(videos) == 1 * 3 * 3  # 1 group x 3 performers x 3 views
    for path in videos:
        lines = path.read_text().split("\n")
        assert not lines[0].startswith(" ") and all(l.startswith(" ") for l in lines[1:-1])
        x = read_video(path)
        assert np.all((x[:, 0, :, 2] > 1.5) & (x[:, 0, :, 2] < 6.0))
        rows = [tuple(map(int, l.split(","))) for l in (out / "label" / path.name).read_text().splitlines()]
        assert len(rows) == 5
        prev_end = -1
        for label, start, end, conf in rows:
            assert 1 <= label <= CFG.classes and conf in (1, 2)
            assert prev_end < start < end < len(x) - 1  # in order, idle frames around
            prev_end = end


def test_second_person_zero_until_entry_then_present(dataset):
    out, _ = dataset
    x = read_video(out / "skeleton" / "A01N01-M.txt")
    present = np.abs(x[:, 1]).sum(axis=(1, 2)) > 0
    assert present.any() and not present[0]  # the group holds the interaction class
    first = int(np.argmax(present))
    assert present[first:].all()


def test_split_file_has_every_class_on_both_sides(dataset):
    out, _ = dataset
    split = read_split(out / "cross_subject_v2.txt")
    assert {n[3:6] for n in split["test"]} == {"N02", "N03"}
    for side in ("train", "test"):
        labels = {int(l.split(",")[0]) for n in split[side]
                  for l in (out / "label" / f"{n}.txt").read_text().splitlines()}
        assert labels == set(range(1, CFG.classes + 1))
    assert (out / "actions.txt").read_text().count("\n") == CFG.classes


def test_views_are_the_same_motion(dataset):
    out, _ = dataset
    a, b = (read_video(out / "skeleton" / f"A01N02-{v}.txt")[:, 0] for v in "LR")
    bone = lambda x: np.linalg.norm(x[:, 5] - x[:, 4], axis=-1)  # upper left arm
    assert len(a) == len(b) and np.abs(np.median(bone(a)) - np.median(bone(b))) < 0.01
    assert np.abs(a - b).max() > 0.5  # but seen from different cameras
