"""Reference denoising, two-actor assembly, empty-frame removal and centering, each
rule on hand-made bodies whose expected result is worked out here."""
import numpy as np

from slim.ingest.center import center_joints, finalize
from slim.ingest.denoise import assemble, denoise
from slim.ingest.ntu_reader import Body


def pose(value, tall=True):
    """[25, 3]: joint j at x = value + 0.01 j, y spread 1 m (tall) or 0.01 m (flat)."""
    j = np.arange(25)
    return np.stack([value + 0.01 * j * (1 if tall else 100), (j / 24.0) if tall else 0.01 * j / 24,
                     np.full(25, 3.0)], 1).astype(np.float32)


def body(bid, frames, values=None, tall=True):
    frames = np.asarray(frames)
    values = np.arange(len(frames), dtype=float) if values is None else values
    return Body(bid, frames, np.stack([pose(v, tall) for v in values]))


def test_single_body_skips_denoising_even_when_short():
    a = assemble([body(1, range(3))], 3)
    assert a.joints.shape == (3, 1, 25, 3) and not a.notes


def test_length_rule_drops_bodies_of_11_frames_or_fewer():
    notes = []
    kept = denoise([body(1, range(11)), body(2, range(12)), body(3, range(20))], notes)
    assert {b.body_id for b in kept} == {2, 3}
    assert "body 1" in notes[0]


def test_all_short_keeps_longest_and_reports():
    notes = []
    kept = denoise([body(1, range(5)), body(2, range(9))], notes)
    assert [b.body_id for b in kept] == [2] and "kept the longest" in notes[-1]


def test_spread_rule_ratio_and_never_the_last_body():
    # body 2 is flat (x-spread 2.4 m > 0.8 * 0.01 m) in every frame: ratio 1 -> dropped.
    notes = []
    kept = denoise([body(1, range(15)), body(2, range(15), tall=False)], notes)
    assert [b.body_id for b in kept] == [1]
    # both flat: the loop stops when one body is left, so the second survives.
    kept = denoise([body(1, range(15), tall=False), body(2, range(15), tall=False)], [])
    assert [b.body_id for b in kept] == [2]


def test_spread_ratio_threshold_0_69754():
    # 10 of 14 frames noisy = 0.714 >= 0.69754 -> dropped; 9 of 14 = 0.643 -> kept.
    def mixed(bid, n_noisy):
        b = body(bid, range(14))
        b.joints[:n_noisy] = pose(0, tall=False)
        return b
    assert [b.body_id for b in denoise([body(1, range(20)), mixed(2, 10)], [])] == [1]
    assert {b.body_id for b in denoise([body(1, range(20)), mixed(2, 9)], [])} == {1, 2}


def test_motion_order_descending():
    still = body(1, range(15), values=np.zeros(15))
    moving = body(2, range(15), values=np.linspace(0, 1, 15))
    assert [b.body_id for b in denoise([still, moving], [])] == [2, 1]


def test_assembly_intervals_overlap_rules():
    # motion order: A (frames 0-19, biggest), B (20-39, moves less), C (5-14), D (10-25).
    a = body(1, range(0, 20), values=np.linspace(0, 3, 20))
    b = body(2, range(20, 40), values=np.linspace(0, 2, 20))
    c = body(3, range(5, 17), values=np.linspace(0, 1, 12))
    d = body(4, range(10, 26), values=np.linspace(0, 0.5, 16))
    out = assemble([a, b, c, d], 40)
    # B does not overlap A ([0,19] vs [20,39]: min(19,39)-max(0,20) < 0) -> slot 1,
    # A's interval becomes [0, 39]; C overlaps it -> slot 2 (actor-2 interval [0,0]
    # grows to [0,16]); D overlaps both -> discarded.
    assert out.joints.shape == (40, 2, 25, 3)
    np.testing.assert_array_equal(out.joints[20:, 0], b.joints)
    np.testing.assert_array_equal(out.joints[5:17, 1], c.joints)
    assert not out.joints[17:, 1].any() and not out.joints[:5, 1].any()
    assert any("body 4: discarded" in n for n in out.notes)


def test_intervals_sharing_one_frame_do_not_overlap_later_overwrites():
    a = body(1, range(0, 15), values=np.linspace(0, 3, 15))
    b = body(2, range(14, 30), values=np.linspace(5, 6, 16))
    out = assemble([a, b], 30)
    assert not out.joints[:, 1].any()     # both went into actor 1's slot
    np.testing.assert_array_equal(out.joints[14, 0], b.joints[0])


def test_actor2_interval_starts_at_zero():
    # C's interval [20, 35] vs actor 2's virtual [0, 0]: no overlap -> slot 2; then E at
    # [10, 25] overlaps actor 2's grown [0, 35] although nobody is in slot 2 at 0-19.
    a = body(1, range(0, 40), values=np.linspace(0, 3, 40))
    c = body(3, range(20, 36), values=np.linspace(0, 1, 16))
    e = body(5, range(10, 26), values=np.linspace(0, 0.5, 16))
    out = assemble([a, c, e], 40)
    assert any("body 5: discarded" in n for n in out.notes)
    assert not out.joints[:20, 1].any()


def test_gap_is_closed_first_plus_k_and_empty_frames_removed():
    # body 2 appears at valid frames 0..11 and 20..31 (24 appearances): the reference puts
    # them at 0..23. Body 1 covers 0..9 only (10 frames: dropped by length) -> one actor,
    # frames 24..31 empty -> removed.
    b2 = body(2, list(range(12)) + list(range(20, 32)))
    out = assemble([body(1, range(10)), b2], 32)
    assert out.joints.shape == (24, 1, 25, 3)
    np.testing.assert_array_equal(out.joints[:, 0], b2.joints)


def test_centering_on_spine_mid_of_first_present_frame_keeps_empty_zero():
    x = np.zeros((3, 2, 25, 3), np.float32)
    x[1:, 0] = 1.0
    x[1, 0, 1] = [0.5, 0.25, 3.0]
    x[:, 1] = 2.0
    x[2, 1] = 0
    y = center_joints(x)
    assert not y[0, 0].any() and not y[2, 1].any()
    np.testing.assert_allclose(y[1, 0, 1], 0)
    np.testing.assert_allclose(y[1, 0, 0], [0.5, 0.75, -2.0])
    np.testing.assert_allclose(y[0, 1, 0], [1.5, 1.75, -1.0])


def test_finalize_drops_nan_frames_and_empty_second_slot():
    x = np.ones((4, 2, 25, 3), np.float32)
    x[:, 1] = 0
    x[2, 0, 3, 1] = np.nan
    notes = []
    y = finalize(x, notes)
    assert y.shape == (3, 1, 25, 3) and not np.isnan(y).any() and "NaN" in notes[0]
