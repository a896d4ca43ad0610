"""Feature extraction: test transform, both persons averaged, absent persons skipped, and
the same features from 2 gloo processes (gathered by sample index) as from one."""
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from slim.eval.features import extract_features, split_rows
from slim.ingest.h5store import H5Samples
from slim.ingest.run import ingest
from slim.ingest.synth import SynthConfig, generate
from slim.model.encoder import Encoder, EncoderConfig, pool_features
from slim.pipeline.views import test_view

CFG = EncoderConfig.tiny(dim=32, depth=1, heads=2)


def _encoder():
    return Encoder(CFG, generator=torch.Generator().manual_seed(0)).eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("featdata")
    generate(root / "raw", SynthConfig(classes=4, performers=3, per_class=1, seed=2), progress=False)
    return ingest("synthetic", root / "raw", root / "data", workers=0)


def test_features_average_present_persons_under_the_test_view(data):
    feats = extract_features(_encoder(), data, "xsub_train", pool="cls+mean", batch_size=7,
                             progress=False)
    index, labels, ids = split_rows(data, "xsub_train")
    assert feats.x.shape == (len(index), 2 * CFG.dim)
    assert np.array_equal(feats.index, index) and feats.ids == ids
    assert torch.equal(feats.y, torch.as_tensor(labels))
    store = H5Samples(data)
    persons = store.num_persons[index]
    assert {1, 2} <= set(persons.tolist()), "the fixture should hold one- and two-person samples"
    enc = _encoder()
    for pos in (int(np.argmax(persons == 1)), int(np.argmax(persons == 2))):
        view = torch.from_numpy(test_view(store.read(int(index[pos]))))      # [M, 64, V, C]
        with torch.no_grad():
            per_person = pool_features(enc(view), "cls+mean")                 # [M, F]
        assert torch.allclose(feats.x[pos], per_person.mean(0), atol=1e-5)


def _worker(rank, world, init_file, data_dir, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        f = extract_features(_encoder(), data_dir, "xsub_test", batch_size=3, progress=False)
        if rank == 1:
            torch.save({"x": f.x, "index": torch.from_numpy(f.index)}, out_file)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_give_the_single_process_features(data, tmp_path):
    out = tmp_path / "rank1.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(data), str(out)), nprocs=2, join=True)
    got = torch.load(out)
    ref = extract_features(_encoder(), data, "xsub_test", batch_size=5, progress=False)
    assert torch.equal(got["index"], torch.from_numpy(ref.index))
    assert torch.allclose(got["x"], ref.x, atol=1e-5)
