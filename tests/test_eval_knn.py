"""k-NN retrieval: exact against a dense reference, chunking-invariant, vote weighting,
and a label-shuffled gallery falls to chance."""
import torch

from slim.eval.knn import knn_accuracy, knn_vote, topk_neighbours


def _dense_topk(q, g, k):
    s = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(g, dim=1).T
    return s.topk(k, dim=1)


def test_chunked_topk_matches_dense():
    gen = torch.Generator().manual_seed(0)
    q, g = torch.randn(37, 16, generator=gen), torch.randn(203, 16, generator=gen)
    s_ref, i_ref = _dense_topk(q, g, 7)
    s, i = topk_neighbours(q, g, 7, query_chunk=5, gallery_chunk=11)
    assert torch.allclose(s, s_ref, atol=1e-5)
    assert torch.equal(i, i_ref)


def test_k_larger_than_gallery_is_clamped():
    s, i = topk_neighbours(torch.randn(3, 4), torch.randn(2, 4), 10, gallery_chunk=1)
    assert s.shape == (3, 2) and sorted(i[0].tolist()) == [0, 1]


def test_weighted_vote_prefers_close_neighbours():
    # one very close neighbour of class 1 beats two distant ones of class 0 under exp(sim/T)
    sims = torch.tensor([[0.99, 0.2, 0.2]])
    labels = torch.tensor([[1, 0, 0]])
    assert knn_vote(sims, labels, 3, 2).item() == 1
    # with a huge temperature the weights are almost equal: the majority wins
    assert knn_vote(sims, labels, 3, 2, temperature=1e4).item() == 0


def test_clustered_features_retrieve_and_shuffled_gallery_falls_to_chance():
    gen = torch.Generator().manual_seed(1)
    classes, per = 8, 60
    centres = torch.randn(classes, 32, generator=gen) * 3
    y = torch.arange(classes).repeat_interleave(per)
    x = centres[y] + torch.randn(len(y), 32, generator=gen)
    yq = torch.arange(classes).repeat_interleave(20)
    xq = centres[yq] + torch.randn(len(yq), 32, generator=gen)
    acc = knn_accuracy(x, y, xq, yq, ks=(1, 10), query_chunk=17, gallery_chunk=50)
    assert acc[1] > 95 and acc[10] > 95
    shuffled = y[torch.randperm(len(y), generator=gen)]
    acc_s = knn_accuracy(x, shuffled, xq, yq, ks=(1, 10))
    chance = 100 / classes
    assert acc_s[1] < chance + 12 and acc_s[10] < chance + 12
