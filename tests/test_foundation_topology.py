"""The skeleton topology facts of PROTOCOLS.md, checked as properties."""
import numpy as np

from slim.ingest import topology as topo


def test_names_and_parents_have_one_entry_per_joint():
    assert len(topo.JOINT_NAMES) == len(topo.PARENTS) == topo.NUM_JOINTS == 25
    assert topo.PARENTS.count(-1) == 1 and topo.PARENTS[topo.ROOT] == -1


def test_tree_is_connected_and_acyclic():
    for j in range(topo.NUM_JOINTS):
        seen, k = set(), j
        while k != -1:  # every joint reaches the root without revisiting a joint
            assert k not in seen
            seen.add(k)
            k = topo.PARENTS[k]
        assert topo.ROOT in seen
    assert len(topo.BONES) == topo.NUM_JOINTS - 1


def test_order_is_topological_and_complete():
    order = topo.TOPO_ORDER
    assert sorted(order) == list(range(topo.NUM_JOINTS))
    pos = {j: i for i, j in enumerate(order)}
    for j, p in enumerate(topo.PARENTS):
        if p >= 0:
            assert pos[p] < pos[j], (j, p)
    # index order is NOT topological (Neck=2 hangs from SpineShoulder=20): the reason
    # the released bone scaling misplaces the upper body.
    assert any(p > j for j, p in enumerate(topo.PARENTS))
    assert order[:5] == (0, 1, 12, 16, 20)


def test_mirror_is_an_involution_mapping_left_names_to_right_names():
    perm = topo.MIRROR_PERM
    assert np.array_equal(perm[perm], np.arange(topo.NUM_JOINTS))
    for j, name in enumerate(topo.JOINT_NAMES):
        other = topo.JOINT_NAMES[perm[j]]
        if name.endswith("Left"):
            assert other == name[: -len("Left")] + "Right"
        elif name.endswith("Right"):
            assert other == name[: -len("Right")] + "Left"
        else:
            assert other == name  # spine and head stay
    # the mirror keeps the tree: the parent of a mirrored joint is the mirrored parent
    for j, p in enumerate(topo.PARENTS):
        if p >= 0:
            assert topo.PARENTS[perm[j]] == perm[p]


def test_groups_partition_the_joints_into_connected_chains():
    flat = [j for g in topo.GROUPS.values() for j in g]
    assert sorted(flat) == list(range(topo.NUM_JOINTS))
    assert len(flat) == len(set(flat))
    for name, g in topo.GROUPS.items():
        # all but the hand joints (tip, thumb both hang from the hand) form a chain
        # where each consecutive pair is connected by a bone
        for a, b in zip(g, g[1:]):
            connected = topo.PARENTS[b] == a or topo.PARENTS[a] == b or topo.PARENTS[a] == topo.PARENTS[b]
            assert connected, (name, a, b)
    assert [topo.GROUP_NAMES[k] for k in topo.GROUP_OF_JOINT[[3, 7, 24, 15, 16]]] == [
        "torso", "left_arm", "right_arm", "left_leg", "right_leg"]


def test_mirror_maps_groups_onto_groups():
    for name, g in topo.GROUPS.items():
        mirrored = tuple(int(topo.MIRROR_PERM[j]) for j in g)
        twin = name.replace("left", "@").replace("right", "left").replace("@", "right")
        assert mirrored == topo.GROUPS[twin]


def test_bone_lengths_by_hand():
    joints = np.zeros((25, 3))
    joints[1] = [0, 0.3, 0]  # SpineMid 0.3 m above SpineBase
    lengths = topo.bone_lengths(joints)
    k = topo.BONES.index((1, 0))
    assert np.isclose(lengths[k], 0.3)
