"""The shard index (shards.json) the ingest writes per shard folder, what `verify`
checks and `--fix-index` rebuilds, and the compact shard encodings (f16, .gz)."""
import json
import tarfile

import numpy as np
import pytest

from slim.ingest.h5store import H5Samples
from slim.ingest.run import ingest
from slim.ingest.verify import verify
from slim.ingest.work import file_sha256
from slim.pipeline.shardset import ShardReader, resolve
from slim.pipeline.sources import _decode

from fixtures_path import FIX


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return FIX / "ntu"


def _joint_bytes(out):
    """Bytes of the joints members of every shard (tar padding aside: these tiny shards
    are mostly headers and 10 KiB records)."""
    total = 0
    for p in (out / "shards").rglob("*.tar"):
        with tarfile.open(p) as t:
            total += sum(m.size for m in t if ".npy" in m.name)
    return total


def _ingest(tmp_path, raw, **kw):
    return ingest("synthetic", [raw], tmp_path / "data", workers=0, **kw)


def test_index_lists_every_shard_and_verify_checks_and_rebuilds_it(tmp_path, raw):
    out = _ingest(tmp_path, raw)
    card = json.loads((out / "card.json").read_text())
    assert card["shard_encoding"] == "f32"
    for split, n in [(f"{b}_{s}", card["benchmarks"][b][s]) for b in card["benchmarks"] for s in ("train", "test")]:
        folder = out / "shards" / split
        index = json.loads((folder / "shards.json").read_text())
        tars = sorted(folder.glob("*.tar"))
        assert [e["name"] for e in index["shards"]] == [p.name for p in tars]
        assert index["num_samples"] == n == sum(e["samples"] for e in index["shards"])
        for e, p in zip(index["shards"], tars):
            assert e["bytes"] == p.stat().st_size and e["sha256"] == file_sha256(p)
            with tarfile.open(p) as t:
                assert e["samples"] == len(t.getnames()) // 2
        assert card["outputs"][f"shards/{split}/shards.json"] == file_sha256(folder / "shards.json")
    assert verify(out) == []
    # a dataset from before shard indexes: no shards.json, none in the card
    folder = out / "shards" / "xsub_train"
    before = (folder / "shards.json").read_bytes()
    (folder / "shards.json").unlink()
    del card["outputs"]["shards/xsub_train/shards.json"]
    (out / "card.json").write_text(json.dumps(card))
    problems = verify(out)
    assert len(problems) == 1 and "shards.json: missing" in problems[0] and "--fix-index" in problems[0]
    assert resolve("", folder).note and "--fix-index" in resolve("", folder).note
    assert verify(out, fix_index=True) == []
    assert (folder / "shards.json").read_bytes() == before
    assert "shards/xsub_train/shards.json" in json.loads((out / "card.json").read_text())["outputs"]
    # an index that lies about a shard (and its card entry updated to match) is caught
    for field, want in (("bytes", "does not match the shard"), ("samples", "samples, the index says")):
        index = json.loads(before)
        index["shards"][0][field] += 1
        index["num_samples"] += field == "samples"
        (folder / "shards.json").write_text(json.dumps(index))
        card = json.loads((out / "card.json").read_text())
        card["outputs"]["shards/xsub_train/shards.json"] = file_sha256(folder / "shards.json")
        (out / "card.json").write_text(json.dumps(card))
        problems = verify(out)
        assert len(problems) == 1 and want in problems[0], problems


def test_compact_encodings_are_recorded_verified_and_read_within_the_bound(tmp_path, raw):
    f32 = _ingest(tmp_path / "a", raw)
    size = {"f32": _joint_bytes(f32)}
    h5 = H5Samples(f32 / "samples.h5")
    for enc in ("f16", "f32.gz", "f16.gz"):
        out = _ingest(tmp_path / enc, raw, shard_encoding=enc)
        card = json.loads((out / "card.json").read_text())
        assert card["shard_encoding"] == enc and card["config"]["shard_encoding"] == enc
        assert verify(out) == []
        size[enc] = _joint_bytes(out)
        ss = resolve("", out / "shards" / "xsub_train")
        assert ss.encoding == enc
        reader = ShardReader(ss)
        for i in range(len(ss.urls)):
            for s in reader.read(i):
                assert ("npy.gz" in s) == enc.endswith(".gz")
                item = _decode(s)
                want = h5.read(item["index"])
                assert item["joints"].dtype == np.float32
                err = np.abs(item["joints"] - want)
                if enc.startswith("f32"):
                    assert not err.any()
                else:   # float16 rounding: half a unit in the last place, 2^-11 relative
                    assert (err <= np.abs(want) * 2.0 ** -11 + 2.0 ** -25).all() and err.max() > 0
    assert size["f16"] < 0.51 * size["f32"] and size["f32.gz"] < size["f32"] and size["f16.gz"] < size["f16"]
