"""NTU `.skeleton` and PKU-MMD II readers on the real fixtures and on broken inputs."""
from pathlib import Path

import numpy as np
import pytest

from slim.ingest.ntu_reader import BadFile, parse_ntu
from slim.ingest.pku_reader import parse_labels, parse_pku_skeleton, read_split_file

from fixtures_path import FIX
NTU = sorted((FIX / "ntu").glob("*.skeleton"))
FRAMES = {"S001C001P001R001A001": 103, "S001C003P008R002A058": 70, "S004C002P003R001A017": 124,
          "S001C001P001R001A050": 74, "S001C001P001R001A005": 54, "S001C001P001R001A006": 75}


def ntu_text(frames, eol="\n"):
    """frames: list of lists of (body_id, xyz [25, 3]) -> `.skeleton` text."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for bid, xyz in bodies:
            out += [f"{bid} 0 1 1 1 1 0 0.01 -0.2 2", "25"]
            out += [f"{x:.7g} {y:.7g} {z:.7g} 1 2 3 4 0 0 0 0 2" for x, y, z in xyz]
    return eol.join(out) + eol


def slow_reference(text: str):
    """Line-by-line reading of the xyz of every body-frame, as the reference does."""
    lines = text.splitlines()
    n, p, rows = int(lines[0]), 1, []
    for _ in range(n):
        nb = int(lines[p]); p += 1
        for _ in range(nb):
            p += 2
            rows.append([[np.float32(t) for t in lines[p + j].split()[:3]] for j in range(25)])
            p += 25
    return np.array(rows, np.float32)


@pytest.mark.parametrize("path", NTU, ids=[p.stem for p in NTU])
def test_fixtures_parse_exactly(path):
    data = path.read_bytes()
    sk = parse_ntu(data)
    assert sk.num_frames == FRAMES[path.stem] == sk.header_frames
    ref = slow_reference(data.decode())   # float32 of each printed value, file order
    # every fixture has its bodies in every frame, so file order interleaves them
    got = np.stack([b.joints for b in sk.bodies], 1).reshape(-1, 25, 3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)
    assert all(b.body_id > 2**56 for b in sk.bodies)


def test_bodyids_that_collide_as_float_stay_distinct():
    sk = parse_ntu((FIX / "ntu" / "S001C003P008R002A058.skeleton").read_bytes())
    ids = [b.body_id for b in sk.bodies]
    assert ids == [72057594037944738, 72057594037944734]
    assert float(ids[0]) == float(ids[1])
    assert [len(b.frames) for b in sk.bodies] == [70, 70]


def test_capital_e_and_crlf_equal_lf():
    data = (FIX / "ntu" / "S004C002P003R001A017.skeleton").read_bytes()
    assert b"E-0" in data and b"\r\n" in data
    a = parse_ntu(data).bodies[0].joints
    b = parse_ntu(data.replace(b"\r\n", b"\n").rstrip(b"\n")).bodies[0].joints
    np.testing.assert_array_equal(a, b)
    tok = data.split(b"\r\n")[4].split()   # first joint line of frame 1
    assert a[0, 0].tolist() == [np.float32(t) for t in tok[:3]]


def test_zero_body_frames_and_many_bodies():
    z = np.ones((25, 3)) * 0.5
    sk = parse_ntu(ntu_text([[], [(7, z)], [], [(7, z), (8, z), (9, z)]]).encode())
    assert sk.num_frames == 2 and sk.header_frames == 4
    assert [b.body_id for b in sk.bodies] == [7, 8, 9]
    assert sk.bodies[0].frames.tolist() == [0, 1]
    assert any("more than 2 bodies" in w for w in sk.warnings)


def test_nan_and_zero_joints_are_reported():
    xyz = np.ones((25, 3))
    xyz[3] = 0
    xyz[4, 0] = np.nan
    sk = parse_ntu(ntu_text([[(1, xyz)]]).encode())
    assert np.isnan(sk.bodies[0].joints[0, 4, 0])
    assert any("NaN" in w for w in sk.warnings) and any("all-zero" in w for w in sk.warnings)


GOOD = ntu_text([[(1, np.ones((25, 3)))]] * 3)


@pytest.mark.parametrize("data,reason", [
    (GOOD[: len(GOOD) // 2].encode(), "truncated"),
    (GOOD.replace("\n25\n", "\n24\n", 1).encode(), "wrong joint count"),
    (GOOD.replace("1 1 1 1 2 3 4", "1 x1 1 1 2 3 4", 1).encode(), "non-number"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"3\n0\n0\n0\n", "no body"),
])
def test_bad_inputs_raise_with_reason(data, reason):
    with pytest.raises(BadFile, match=reason):
        parse_ntu(data)


def test_pku_fixture():
    v = parse_pku_skeleton((FIX / "pku" / "A10N08-L.txt").read_bytes())
    assert v.shape == (1040, 2, 25, 3)
    present = (v[:, 1] != 0).any(axis=(1, 2))
    assert not present[:312].any() and present[312]


def test_pku_label_quirks():
    notes = []
    segs = parse_labels("3,10,20,1\n5,40,30,2,\n\n7,0,5,1\n9,95,120,1\n", 100, notes)
    assert [(s.label, s.start, s.end, s.line) for s in segs] == \
        [(2, 10, 20, 1), (4, 30, 40, 2), (6, 1, 5, 4), (8, 95, 100, 5)]
    assert len(notes) == 3


def test_pku_split_file_sic_header():
    train, test = read_split_file("Training videos: \nA01N01-L, A01N01-M,\n"
                                  "Validataion videos: \nA01N02-L, A01N02-R\n")
    assert train == {"A01N01-L", "A01N01-M"} and test == {"A01N02-L", "A01N02-R"}
