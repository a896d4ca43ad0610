"""Linear probe on cached features and the honest validation carving."""
import numpy as np
import torch

from slim.eval.probe import probe_accuracy, train_probe
from slim.eval.split import carve_validation


def _blobs(n_per, classes=5, dim=24, seed=0, noise=1.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    y = torch.arange(classes).repeat_interleave(n_per)
    return centres[y] + noise * torch.randn(len(y), dim, generator=g), y


def test_carving_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(4), [10, 20, 3, 1])
    fit, val = carve_validation(labels, 0.2, np.random.default_rng(0))
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == len(labels)
    counts = np.bincount(labels[val], minlength=4)
    assert counts.tolist() == [2, 4, 1, 0]             # singleton class keeps its sample
    assert set(labels[fit]) == {0, 1, 2, 3}
    fit2, val2 = carve_validation(labels, 0.2, np.random.default_rng(0))
    assert np.array_equal(val, val2)
    _, val3 = carve_validation(labels, 0.2, np.random.default_rng(1))
    assert not np.array_equal(val, val3)


def test_probe_learns_separable_features_and_selects_from_the_grid():
    x, y = _blobs(40)
    xs, ys = _blobs(20, seed=0)
    res = train_probe(x, y, xs, ys, 5, lrs=(0.01, 0.1, 1.0), epochs=8, batch_size=32,
                      generator=torch.Generator().manual_seed(0))
    assert res.lr in (0.01, 0.1, 1.0) and 1 <= res.epoch <= 8
    assert set(res.curves) == {0.01, 0.1, 1.0} and all(len(c) == 8 for c in res.curves.values())
    assert res.select_accuracy == max(max(c) for c in res.curves.values())
    assert probe_accuracy(res.model, xs, ys) == res.select_accuracy
    assert res.select_accuracy > 90


def test_probe_on_shuffled_labels_generalises_at_chance():
    x, y = _blobs(60, classes=4)
    g = torch.Generator().manual_seed(3)
    y_bad = y[torch.randperm(len(y), generator=g)]
    xt, yt = _blobs(100, classes=4, seed=0)
    res = train_probe(x, y_bad, x[:40], y_bad[:40], 4, epochs=5, batch_size=32,
                      generator=torch.Generator().manual_seed(0))
    assert probe_accuracy(res.model, xt, yt) < 25 + 15


def test_probe_is_deterministic_given_its_generator():
    x, y = _blobs(20)
    a = train_probe(x, y, x, y, 5, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(5))
    b = train_probe(x, y, x, y, 5, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(5))
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
