"""Optional body-centred view normalisation at ingest (`--view yaw|full`): a sample
recorded by a turned (and tilted) camera comes out as the one a front camera gives, the
second actor keeps its place relative to the first, absent frames stay zero, and the
option is part of the ingest fingerprint and the card."""
import json

import numpy as np
import pytest

from slim.ingest.center import finalize as _finalize, rotate_view, view_rotation
from slim.ingest.run import ingest
from slim.ingest.topology import NTU25

J = NTU25.joint_index

from fixtures_path import FIX


def finalize(x, notes, view="none", layout="ntu25"):
    """Ingest's order for one sample: centring (finalize), then the view rotation."""
    return rotate_view(_finalize(x, notes), view, layout)


def rot_y(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def rot_x(deg):
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def front_body(t=6, seed=0):
    """[t, 25, 3]: a person facing a level camera 3 m away (right side at +x, y up),
    spine vertical, hips and shoulders along x; the other joints random near the body,
    moving a little each frame."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-0.3, 0.3, (25, 3)) + [0.0, 0.4, 0.0]
    p[J["SpineBase"]] = [0, 0, 0]
    p[J["SpineMid"]] = [0, 0.25, 0]
    p[J["SpineShoulder"]] = [0, 0.5, 0]
    p[J["ShoulderLeft"]], p[J["ShoulderRight"]] = [-0.18, 0.48, 0], [0.18, 0.48, 0]
    p[J["HipLeft"]], p[J["HipRight"]] = [-0.1, -0.02, 0], [0.1, -0.02, 0]
    frames = p + rng.normal(0, 0.02, (t, 25, 3)) * np.isin(np.arange(25), [5, 6, 7, 9, 10, 11])[:, None]
    return frames + [0.3, 0.1, 3.0]


def as_slots(*bodies):
    return np.stack(bodies, axis=1).astype(np.float32)  # [T, S, 25, 3]


def camera(x, r):
    """The same scene seen by a camera turned by r about the world origin."""
    return (x.astype(np.float64) @ r.T).astype(np.float32)


@pytest.mark.parametrize("view,r", [("yaw", rot_y(70)), ("yaw", rot_y(-150)),
                                    ("full", rot_y(120) @ rot_x(25)),
                                    ("full", rot_x(-20) @ rot_y(-60))])
def test_turned_camera_gives_the_front_view(view, r):
    x = as_slots(front_body())
    want = finalize(x.copy(), [], view=view)
    got = finalize(camera(x, r), [], view=view)
    np.testing.assert_allclose(got, want, atol=2e-5)
    # and a person facing the camera is left as the plain centring leaves it
    np.testing.assert_allclose(want, finalize(x.copy(), []), atol=2e-5)


def test_yaw_keeps_the_camera_tilt_full_removes_it():
    x = as_slots(front_body())
    tilted = camera(x, rot_x(20))
    plain = finalize(x.copy(), [])
    assert np.abs(finalize(tilted.copy(), [], view="yaw") - plain).max() > 0.05
    np.testing.assert_allclose(finalize(tilted.copy(), [], view="full"), plain, atol=2e-5)


def test_rotation_is_proper_and_degenerate_axes_give_identity():
    x = camera(as_slots(front_body()), rot_y(33) @ rot_x(12))
    for view in ("yaw", "full"):
        r = view_rotation(x, view)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(r) == pytest.approx(1.0)
    assert np.array_equal(view_rotation(x, "none"), np.eye(3))
    flat = np.zeros((3, 1, 25, 3), np.float32)
    flat[:, 0, :, 1] = 1.0  # every joint at the same point: no axis to align
    assert np.array_equal(view_rotation(flat, "full"), np.eye(3))
    with pytest.raises(ValueError):
        view_rotation(x, "sideways")


def test_second_actor_and_absent_frames():
    a, b = front_body(8, 1), front_body(8, 2) + [1.0, 0.0, 0.5]
    x = as_slots(a, b)
    x[:2, 0] = 0        # actor 1 enters late: its first present frame orients the sample
    x[6:, 1] = 0        # actor 2 leaves early
    r = rot_y(80)
    got = finalize(camera(x, r), [], view="yaw")
    assert not got[:2, 0].any() and not got[6:, 1].any()
    # relative geometry is kept: actor 2's offset from actor 1 is turned, not changed
    want = finalize(x.copy(), [], view="yaw")
    np.testing.assert_allclose(got, want, atol=2e-5)
    d = np.linalg.norm(got[3, 1, J["SpineMid"]] - got[3, 0, J["SpineMid"]])
    assert d == pytest.approx(np.linalg.norm(x[3, 1, J["SpineMid"]] - x[3, 0, J["SpineMid"]]), abs=1e-5)


def test_kinect_v1_layout_uses_its_own_joint_names():
    from slim.ingest.topology import get_layout
    v1 = get_layout("kinect_v1_20").joint_index
    body = front_body()
    x = np.zeros((body.shape[0], 1, 20, 3), np.float32)
    for name, i in v1.items():  # the v1 joints at the NTU joints they correspond to
        x[:, 0, i] = body[:, J[{"HipCenter": "SpineBase", "Spine": "SpineMid",
                                "ShoulderCenter": "SpineShoulder"}.get(name, name)]]
    r = rot_y(-110) @ rot_x(18)
    want = rotate_view(_finalize(x.copy(), [], center_joint=v1["Spine"]), "full", "kinect_v1_20")
    got = rotate_view(_finalize(camera(x, r), [], center_joint=v1["Spine"]), "full", "kinect_v1_20")
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_ingest_records_the_view_and_reruns_when_it_changes(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    src = FIX / "ntu" / "S001C001P001R001A001.skeleton"
    (raw / src.name).write_bytes(src.read_bytes())
    plain = ingest("synthetic", [raw], tmp_path / "a", workers=0)
    turned = ingest("synthetic", [raw], tmp_path / "a", workers=0, view="full")  # same folder
    card = json.loads((turned / "card.json").read_text())
    assert "view:full" in card["normalization"] and card["config"]["view"] == "full"
    from slim.ingest.h5store import H5Samples
    h5 = H5Samples(turned)
    x = h5.read(0)
    h5.close()
    f = x[:5, 0]
    up = (f[:, J["SpineShoulder"]] - f[:, J["SpineBase"]]).mean(0)
    assert up[1] / np.linalg.norm(up) == pytest.approx(1.0, abs=1e-5)    # spine stands up
    np.testing.assert_allclose(x[0, 0, J["SpineMid"]], 0, atol=1e-6)     # still centred
    assert plain == turned


def test_native_nwucla_ingest_with_full_view(tmp_path):
    from pathlib import Path

    from slim.ingest.h5store import H5Samples
    from slim.ingest.topology import get_layout
    raw = Path(__file__).parent / "fixtures" / "nwucla"
    out = ingest("nwucla", [raw], tmp_path / "d", workers=0, view="full")
    card = json.loads((out / "card.json").read_text())
    assert "view:full" in card["normalization"] and card["layout"] == "kinect_v1_20"
    v1 = get_layout("kinect_v1_20").joint_index
    h5 = H5Samples(out)
    for i in range(len(h5.ids)):
        x = h5.read(i)
        f = x[:5, 0]
        up = (f[:, v1["ShoulderCenter"]] - f[:, v1["HipCenter"]]).mean(0)
        lat = (f[:, v1["ShoulderRight"]] - f[:, v1["ShoulderLeft"]] + f[:, v1["HipRight"]] - f[:, v1["HipLeft"]]).mean(0)
        assert up[1] / np.linalg.norm(up) == pytest.approx(1.0, abs=1e-4)
        assert abs(lat[2]) < 1e-4 and lat[0] > 0
    h5.close()
