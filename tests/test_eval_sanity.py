"""Sanity that cannot be faked, on the synthetic dataset: a randomly initialised encoder
scores well below a supervised oracle in retrieval and linear evaluation, and a
label-shuffled gallery / training split falls to chance.

The oracle is an encoder of the same architecture trained with labels, through this
package's own fine-tuning loop, on every sample of the dataset (train and test): it is an
upper bound by construction (it has seen the test labels), which is what an oracle is
for. A supervised encoder trained on the training split alone is not a meaningful
oracle here: with a handful of samples per class and a few seconds of CPU it generalises
no better than random features, which on clean synthetic motions are already strong.
If the evaluation misaligned features and labels, ignored the features, or leaked
labels, the oracle would not beat the random encoder, or the shuffled gallery would not
fall to chance."""
import numpy as np
import pytest
import torch

from slim.eval.features import extract_features, split_rows
from slim.eval.finetune import FinetuneConfig, finetune
from slim.eval.knn import knn_accuracy
from slim.eval.linear import LinearConfig, fit_linear
from slim.ingest.run import ingest
from slim.ingest.synth import SynthConfig, generate
from slim.model.encoder import Encoder, EncoderConfig

CLASSES = 10
# 16-frame patches halve the token count: the oracle's training is the cost of this test.
CFG = EncoderConfig.tiny(dim=32, depth=1, heads=2, patch_t=16)
LINEAR = LinearConfig(epochs=30, batch_size=32, lrs=(0.1, 0.3), select_on="val", val_fraction=0.2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sanity")
    generate(root / "raw", SynthConfig(classes=CLASSES, performers=3, per_class=1, seed=0), progress=False)
    return ingest("synthetic", root / "raw", root / "data", workers=0)


def _random_encoder():
    return Encoder(CFG, generator=torch.Generator().manual_seed(0)).eval()


def _features(enc, data):
    return tuple(extract_features(enc, data, c, progress=False) for c in ("xsub_train", "xsub_test"))


@pytest.fixture(scope="module")
def random_feats(data):
    return _features(_random_encoder(), data)


def _oracle(data):
    rows = [split_rows(data, c) for c in ("xsub_train", "xsub_test")]
    every = (np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows]))
    train = FinetuneConfig(epochs=60, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_epochs=1,
                           weight_decay=0.0, layer_decay=1.0, drop_path=0.0, label_smoothing=0.0,
                           eval_every=60, device="cpu")
    out = finetune(_random_encoder(), data, CLASSES, every, every, None, train, seed=0,
                   device=torch.device("cpu"))
    assert out["select_top1"] > 80, f"the oracle did not learn its labels: {out['curve']}"
    return out["model"].encoder.eval()


def _knn(train, test, labels=None):
    return knn_accuracy(train.x, train.y if labels is None else labels, test.x, test.y, (1,),
                        num_classes=CLASSES)[1]


def test_random_encoder_is_well_below_the_oracle(data, random_feats):
    r_train, r_test = random_feats
    o_train, o_test = _features(_oracle(data), data)
    r_knn, o_knn = _knn(r_train, r_test), _knn(o_train, o_test)
    r_lin = fit_linear(r_train, r_test, CLASSES, LINEAR, torch.device("cpu"))[0]["top1"]
    o_lin = fit_linear(o_train, o_test, CLASSES, LINEAR, torch.device("cpu"))[0]["top1"]
    assert o_knn >= r_knn + 10, (r_knn, o_knn)
    assert o_lin >= r_lin + 15, (r_lin, o_lin)


def test_label_shuffled_gallery_falls_to_chance(random_feats):
    train, test = random_feats
    chance = 100 / CLASSES
    assert _knn(train, test) > chance + 25                            # unshuffled: far above
    accs = []
    for s in range(5):  # a few shuffles: one tiny test split is a noisy estimate of chance
        perm = torch.randperm(len(train.y), generator=torch.Generator().manual_seed(s))
        accs.append(_knn(train, test, train.y[perm]))
    assert np.mean(accs) < chance + 10, accs
    perm = torch.randperm(len(train.y), generator=torch.Generator().manual_seed(99))
    bad = type(train)(x=train.x, y=train.y[perm], index=train.index, ids=train.ids)
    lin = fit_linear(bad, test, CLASSES, LINEAR, torch.device("cpu"))[0]["top1"]
    assert lin < chance + 15, lin
