"""The skeleton layout facts (PROTOCOLS.md, SOURCES.md for Kinect v1), checked as
properties of every registered layout."""
import numpy as np
import pytest

from slim.ingest import topology as topo

LAYOUTS = list(topo.LAYOUTS.values())
each_layout = pytest.mark.parametrize("lay", LAYOUTS, ids=[lay.name for lay in LAYOUTS])


def test_registry_holds_both_kinects_and_old_names_resolve():
    assert {"ntu25", "kinect_v1_20"} <= set(topo.LAYOUTS)
    assert topo.get_layout("kinect-v2-25") is topo.NTU25  # name written by older ingests
    assert topo.NTU25.num_joints == 25 and topo.KINECT_V1_20.num_joints == 20
    with pytest.raises(KeyError, match="known: ntu25"):
        topo.get_layout("openpose18")


def test_a_third_layout_is_one_registration():
    lay = topo.Layout(name="stick3", description="toy", joint_names=("Hip", "ArmLeft", "ArmRight"),
                      parents=(-1, 0, 0), mirror_pairs=((1, 2),),
                      groups=(("torso", (0,)), ("left_arm", (1,)), ("right_arm", (2,))), center_joint=0)
    assert lay.bones == ((1, 0), (2, 0)) and lay.mirror_perm.tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="partition"):
        topo.Layout(name="bad", description="", joint_names=("a", "b"), parents=(-1, 0),
                    mirror_pairs=(), groups=(("g", (0,)),), center_joint=0)
    with pytest.raises(ValueError, match="tree"):
        topo.Layout(name="cycle", description="", joint_names=("a", "b", "c"), parents=(-1, 2, 1),
                    mirror_pairs=(), groups=(("g", (0, 1, 2)),), center_joint=0)


@each_layout
def test_names_and_parents_have_one_entry_per_joint(lay):
    assert len(lay.joint_names) == len(lay.parents) == lay.num_joints
    assert lay.parents.count(-1) == 1 and lay.parents[lay.root] == -1
    assert lay.joint_names[lay.center_joint] in ("SpineMid", "Spine")


@each_layout
def test_tree_is_connected_and_acyclic(lay):
    for j in range(lay.num_joints):
        seen, k = set(), j
        while k != -1:  # every joint reaches the root without revisiting a joint
            assert k not in seen
            seen.add(k)
            k = lay.parents[k]
        assert lay.root in seen
    assert len(lay.bones) == lay.num_joints - 1


@each_layout
def test_order_is_topological_and_complete(lay):
    order = lay.topo_order
    assert sorted(order) == list(range(lay.num_joints))
    pos = {j: i for i, j in enumerate(order)}
    for j, p in enumerate(lay.parents):
        if p >= 0:
            assert pos[p] < pos[j], (j, p)


def test_ntu_index_order_is_not_topological():
    # Neck=2 hangs from SpineShoulder=20: the reason the released bone scaling
    # misplaces the upper body.
    assert any(p > j for j, p in enumerate(topo.NTU25.parents))
    assert topo.NTU25.topo_order[:5] == (0, 1, 12, 16, 20)


@each_layout
def test_mirror_is_an_involution_mapping_left_names_to_right_names(lay):
    perm = lay.mirror_perm
    assert np.array_equal(perm[perm], np.arange(lay.num_joints))
    for j, name in enumerate(lay.joint_names):
        other = lay.joint_names[perm[j]]
        if name.endswith("Left"):
            assert other == name[: -len("Left")] + "Right"
        elif name.endswith("Right"):
            assert other == name[: -len("Right")] + "Left"
        else:
            assert other == name  # spine and head stay
    # the mirror keeps the tree: the parent of a mirrored joint is the mirrored parent
    for j, p in enumerate(lay.parents):
        if p >= 0:
            assert lay.parents[perm[j]] == perm[p]


@each_layout
def test_groups_partition_the_joints_into_connected_chains(lay):
    flat = [j for _, g in lay.groups for j in g]
    assert sorted(flat) == list(range(lay.num_joints))
    assert len(flat) == len(set(flat))
    for name, g in lay.groups:
        # consecutive joints are connected by a bone, or are siblings (NTU's hand tip
        # and thumb both hang from the hand)
        for a, b in zip(g, g[1:]):
            connected = lay.parents[b] == a or lay.parents[a] == b or lay.parents[a] == lay.parents[b]
            assert connected, (name, a, b)
    hand_l, foot_r = lay.joint_index["HandLeft"], lay.joint_index["FootRight"]
    assert [lay.group_names[k] for k in lay.group_of_joint[[lay.joint_index["Head"], hand_l, foot_r]]] == [
        "torso", "left_arm", "right_leg"]


@each_layout
def test_mirror_maps_groups_onto_groups(lay):
    groups = lay.group_dict
    for name, g in groups.items():
        mirrored = tuple(int(lay.mirror_perm[j]) for j in g)
        twin = name.replace("left", "@").replace("right", "left").replace("@", "right")
        assert mirrored == groups[twin]


@each_layout
def test_bone_lengths_by_hand(lay):
    joints = np.zeros((lay.num_joints, 3))
    joints[lay.center_joint] = [0, 0.3, 0]  # the spine joint 0.3 m above the root
    lengths = lay.bone_lengths(joints)
    k = lay.bones.index((lay.center_joint, lay.root))
    assert np.isclose(lengths[k], 0.3)


def test_kinect_v1_to_ntu_mapping_keeps_shared_joints_and_fills_the_rest_from_neighbours():
    m = topo.get_mapping("kinect_v1_20", "ntu25")
    v1, ntu = topo.KINECT_V1_20, topo.NTU25
    x = np.arange(20 * 3, dtype=np.float32).reshape(1, 20, 3)
    y = m.apply(x)
    assert y.shape == (1, 25, 3)
    for name in ("Head", "HandLeft", "FootRight", "ShoulderRight", "KneeLeft"):  # same names
        assert np.array_equal(y[0, ntu.joint_index[name]], x[0, v1.joint_index[name]])
    assert np.array_equal(y[0, ntu.joint_index["SpineShoulder"]], x[0, v1.joint_index["ShoulderCenter"]])
    assert np.array_equal(y[0, ntu.joint_index["SpineMid"]], x[0, v1.joint_index["Spine"]])
    assert set(m.filled) == {"Neck", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight"}
    # each filled joint copies its nearest ancestor that v1 has
    for name, src in m.filled.items():
        parent = ntu.joint_names[ntu.parents[ntu.joint_index[name]]]
        assert src == {"SpineShoulder": "ShoulderCenter"}.get(parent, parent)
    # every v1 joint is used: nothing recorded is thrown away
    assert set(m.source_of) == set(range(20))
    # mapping commutes with mirroring (left stays left)
    assert np.array_equal(m.apply(x[:, v1.mirror_perm]), y[:, ntu.mirror_perm])
    with pytest.raises(KeyError, match="no mapping"):
        topo.get_mapping("ntu25", "kinect_v1_20")
