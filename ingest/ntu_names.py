"""NTU RGB+D file names, the official missing-sample lists, class names and splits."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np

NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
FIELDS = ("setup", "camera", "performer", "replication", "action")

XSUB_TRAIN_60 = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31,
                           34, 35, 38})
XSUB_TRAIN_120 = XSUB_TRAIN_60 | frozenset({
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84,
    85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103})
XVIEW_TRAIN_CAMERAS = frozenset({2, 3})

#: (number of setups, number of actions) of each official dataset.
OFFICIAL = {"ntu60": (17, 60), "ntu120": (32, 120)}
MISSING_FILE = {"ntu60": "NTU_RGBD_samples_with_missing_skeletons.txt",
                "ntu120": "NTU_RGBD120_samples_with_missing_skeletons.txt"}
LABEL_MAP = {"ntu60": "mmaction2_label_map_ntu60.txt", "ntu120": "mmaction2_label_map_ntu120.txt"}
BENCHMARKS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset"),
              "synthetic": ("xsub", "xview")}


def parse_name(stem: str) -> dict[str, int] | None:
    """`S001C002P003R001A010` -> {setup: 1, camera: 2, performer: 3, replication: 1,
    action: 10}; None when the name does not follow the NTU pattern."""
    m = NAME_RE.fullmatch(stem)
    return dict(zip(FIELDS, map(int, m.groups()))) if m else None


def resource_text(name: str) -> str:
    return resources.files("slim.ingest").joinpath("resources", name).read_text(encoding="utf-8")


def read_missing(text: str) -> set[str]:
    """Names in a missing-sample list; accepts the official file (2 text lines + a blank
    line before the names) and header-less copies."""
    return {m.group(0) for m in NAME_RE.finditer(text)}


def official_missing(dataset: str) -> set[str]:
    return read_missing(resource_text(MISSING_FILE[dataset]))


def class_names(dataset: str) -> list[str]:
    """NTU action names (line i = action A(i)), from the mmaction2 label maps; the trailing
    dots of the NTU-120 file are removed."""
    lines = [ln.strip() for ln in resource_text(LABEL_MAP[dataset]).splitlines()]
    return [ln.rstrip(".") for ln in lines if ln]


def split_columns(dataset: str, setup: np.ndarray, camera: np.ndarray,
                  performer: np.ndarray) -> dict[str, np.ndarray]:
    """bool [N] per `<benchmark>_<split>` column from the name fields (int arrays [N]).

    ntu60 / synthetic: xsub (NTU-60 training performers), xview (cameras 2, 3 train);
    ntu120: xsub (NTU-120 training performers), xset (even setups train).
    """
    out: dict[str, np.ndarray] = {}
    train_perf = XSUB_TRAIN_120 if dataset == "ntu120" else XSUB_TRAIN_60
    out["xsub_train"] = np.isin(performer, sorted(train_perf))
    out["xsub_test"] = ~out["xsub_train"]
    if dataset == "ntu120":
        out["xset_train"] = setup % 2 == 0
        out["xset_test"] = ~out["xset_train"]
    else:
        out["xview_train"] = np.isin(camera, sorted(XVIEW_TRAIN_CAMERAS))
        out["xview_test"] = camera == 1
    return out


def is_official_name(dataset: str, fields: dict[str, int]) -> bool:
    """Whether a parsed name lies inside the official dataset's setups and actions."""
    setups, actions = OFFICIAL[dataset]
    return 1 <= fields["setup"] <= setups and 1 <= fields["action"] <= actions \
        and 1 <= fields["camera"] <= 3


def find_files(raw_dirs: list[Path], suffix: str) -> tuple[dict[str, Path], list[str]]:
    """Recursively find `*<suffix>` files under every raw dir (NTU-120 comes in two
    archives); a raw path that is a .zip (the official `nturgbd_skeletons_s001_to_s017.zip`)
    contributes its members as `archive.zip::member` paths, read without unpacking
    (nwucla.read_bytes). Returns ({stem: path} in name order, warnings about duplicates).
    Raises ValueError for a .zip that is not a zip archive."""
    import zipfile

    from slim.ingest.nwucla import MEMBER_SEP
    found: dict[str, Path] = {}
    warnings = []

    def add(name: str, p: Path) -> None:
        stem = name[: -len(suffix)]
        if stem in found:
            warnings.append(f"{stem}: found twice ({found[stem]} and {p}); using the first")
        else:
            found[stem] = p

    for d in raw_dirs:
        d = Path(d)
        if d.is_file() and d.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(d) as z:
                    members = sorted(n for n in z.namelist() if n.endswith(suffix))
            except zipfile.BadZipFile:
                raise ValueError(f"{d}: not a zip archive") from None
            for n in members:
                add(n.rsplit("/", 1)[-1], Path(f"{d}{MEMBER_SEP}{n}"))
            continue
        for p in sorted(d.rglob(f"*{suffix}")):
            if p.is_file():
                add(p.name, p)
    return dict(sorted(found.items())), warnings
