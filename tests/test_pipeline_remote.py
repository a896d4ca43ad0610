"""Shards from anywhere: a loopback HTTP server (127.0.0.1 only, a thread, bounded in
requests and time), pipe: and fsspec specs give the local folder's batches; a dropped
connection is retried, a truncated or altered shard is skipped, counted in
metrics.jsonl, and too many failures stop the run with error + hint."""
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from slim.pipeline.config import PipelineConfig
from slim.pipeline.loader import ShardFaults, build_pretrain_loader
from slim.pipeline.shardset import ShardError, ShardReader, ShardUnreadable, resolve
from slim.train import config as C
from slim.train.configtools import parse_set
from slim.train.trainer import TrainingError, pretrain

from test_pipeline_loader import _same, _take, make_dataset

MAX_REQUESTS = 400      # the server answers 503 beyond this: no test can loop on it
MAX_SECONDS = 300       # and shuts itself down after this (a loaded 2-core machine)

needs_curl = pytest.mark.skipif(shutil.which("curl") is None,
                                reason="webdataset opens http:// through the curl command")


class ShardServer:
    """Serves `folder` on 127.0.0.1:<free port>. faults: "drop_first" -> the first
    shard request (whatever shard) gets its headers and half its body, then the connection is
    closed (a reset mid-shard); "truncate_second" -> every request for the second distinct shard asked for
    gets half the file (a consistent, shorter Content-Length)."""

    def __init__(self, folder: Path, faults=()):
        self.folder, self.faults = Path(folder), set(faults)
        self.requests: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                with server.lock:
                    server.requests.append(name)
                    n = len(server.requests)
                    shards = [r for r in dict.fromkeys(server.requests) if r.endswith(".tar")]
                path = server.folder / name
                if n > MAX_REQUESTS or not path.is_file():
                    self.send_error(503 if n > MAX_REQUESTS else 404)
                    return
                data = path.read_bytes()
                tars = [r for r in server.requests if r.endswith(".tar")]
                drop = "drop_first" in server.faults and len(tars) == 1 and name.endswith(".tar")
                if "truncate_second" in server.faults and len(shards) > 1 and name == shards[1]:
                    data = data[:len(data) // 2]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if drop:
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.timer = threading.Timer(MAX_SECONDS, self.httpd.shutdown)

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("remote"))


def _folder(data):
    return data / "shards" / "xsub_train"


def _loader(data, shards="", faults=None, steps=4, **kw):
    return build_pretrain_loader(data, "xsub", PipelineConfig(), 4, seed=5, source="shards",
                                 epoch_samples=16, end_step=steps, shards=shards, faults=faults, **kw)


@needs_curl
def test_http_pipe_and_fsspec_specs_give_the_local_batches(tiny):
    data, _ = tiny
    local = _take(_loader(data), 4)
    index = json.loads((_folder(data) / "shards.json").read_text())
    assert [e["name"] for e in index["shards"]] == [f"train-{k:06d}.tar" for k in range(4)]
    assert index["num_samples"] == 16 and index["encoding"] == "f32"
    with ShardServer(_folder(data)) as srv:
        for spec in (srv.url + "/train-{000000..000003}.tar", srv.url + "/"):
            got = _take(_loader(data, spec), 4)
            assert len(got) == 4 and all(b["shard_events"] == [] for b in got)
            for a, b in zip(local, got):
                _same(a, b)
        assert len(srv.requests) < MAX_REQUESTS
    for a, b in zip(local, _take(_loader(data, f"pipe:cat {_folder(data)}/train-{{000000..000003}}.tar"), 4)):
        _same(a, b)
    import fsspec
    fs = fsspec.filesystem("memory")
    for p in _folder(data).iterdir():
        fs.pipe(f"/slimtest/xsub_train/{p.name}", p.read_bytes())
    for a, b in zip(local, _take(_loader(data, "memory://slimtest/xsub_train"), 4)):
        _same(a, b)


def test_specs_that_disagree_with_the_index_are_refused(tiny, tmp_path):
    data, _ = tiny
    with pytest.raises(ShardError, match="names 3 shards, its index .* lists 4") as e:
        resolve(f"pipe:cat {_folder(data)}/train-{{000000..000002}}.tar", data)
    assert "000003" in e.value.hint
    with pytest.raises(ShardError, match="cannot read the shard index") as e:
        resolve(f"pipe:cat {tmp_path}/train-{{000000..000003}}.tar", data)
    assert "shards.json" in e.value.hint
    with pytest.raises(ShardError, match="s3fs|fsspec") as e:
        resolve("s3://no-such-bucket-slim/xsub_train", data)
    assert "slim-skeleton[remote]" in e.value.hint
    # an index from another split: the manifest's count disagrees
    other = tmp_path / "other"
    shutil.copytree(_folder(data), other)
    idx = json.loads((other / "shards.json").read_text())
    idx["shards"][0]["samples"] += 1
    idx["num_samples"] += 1
    (other / "shards.json").write_text(json.dumps(idx))
    with pytest.raises(ShardError, match="17 samples.*16 in xsub_train"):
        _loader(data, str(other))


def test_a_changed_shard_is_retried_then_skipped_and_too_many_stop(tiny, tmp_path):
    data, _ = tiny
    bad = tmp_path / "bad"
    shutil.copytree(_folder(data), bad)
    raw = bytearray((bad / "train-000002.tar").read_bytes())
    raw[1000] ^= 1                                  # same size, another sha256
    (bad / "train-000002.tar").write_bytes(bytes(raw))
    waits = []
    reader = ShardReader(resolve(str(bad), data), retries=2, wait=0.5, sleep=waits.append)
    with pytest.raises(ShardUnreadable, match="checksum mismatch"):
        reader.read(2)
    assert waits == [0.5, 1.0]
    assert [e["kind"] for e in reader.drain()] == ["retry", "retry", "skip"]
    assert len(reader.read(1)) == 4 and reader.drain() == []
    # the stream goes on without it; no sample of shard 2 (rows 8..11) is ever used
    got = _take(_loader(data, str(bad), ShardFaults(retries=0, wait=0, max_failed=0.5), steps=6), 6)
    events = [e for b in got for e in b["shard_events"]]
    assert events and {(e["shard"], e["kind"]) for e in events} == {("train-000002.tar", "skip")}
    assert not set(torch.cat([b["index"] for b in got]).tolist()) & {8, 9, 10, 11}
    with pytest.raises(ShardError, match="1 of this reader's 4 shards could not be read") as e:
        _take(_loader(data, str(bad), ShardFaults(retries=0, wait=0, max_failed=0.2), steps=6), 6)
    assert "max_failed_shards" in e.value.hint


@needs_curl
def test_training_survives_a_dropped_connection_and_a_truncated_shard(tiny, tmp_path):
    data, _ = tiny
    # (an unfaulted server's batches equal the local folder's: the first test)
    sets = ["data.source=shards", "data.shard_retry_wait=0.01", "data.shard_retries=2",
            "schedule.epochs=2", "checkpoint.every_steps=6"]
    with ShardServer(_folder(data), faults=("drop_first", "truncate_second")) as srv:
        spec = srv.url + "/train-{000000..000003}.tar"
        cfg = C.resolve("cpu-smoke", cli_overrides=parse_set(
            sets + [f"data.shards={spec}", "data.max_failed_shards=0.5"]))
        t0 = time.monotonic()
        run = pretrain(cfg, data_dir=data, benchmark="xsub", run_dir=tmp_path / "faulty")
        assert run["status"] == "finished" and time.monotonic() - t0 < MAX_SECONDS
        first, second = [r for r in dict.fromkeys(srv.requests) if r.endswith(".tar")][:2]
        # 2 epochs: in each, the truncated shard gets 1 try + 2 retries, then is skipped
        assert srv.requests.count(second) == 2 * 3
        assert len(srv.requests) < MAX_REQUESTS
        lines = [json.loads(ln) for ln in (tmp_path / "faulty" / "metrics.jsonl").read_text().splitlines()]
        assert sum(r["shard_retries"] for r in lines) == 1 + 2 * 2    # the drop, the truncation's
        assert sum(r["shards_skipped"] for r in lines) == 2 and lines[-1]["shards_skipped_total"] == 2
        assert [n for r in lines for n in r.get("skipped_shards", [])] == [second, second]
        # too many failures: the run stops with error + hint
        cfg = C.resolve("cpu-smoke", cli_overrides=parse_set(
            sets + [f"data.shards={spec}", "data.max_failed_shards=0.1"]))
        with pytest.raises(TrainingError, match="could not be read") as e:
            pretrain(cfg, data_dir=data, benchmark="xsub", run_dir=tmp_path / "stops")
        assert "data.max_failed_shards" in e.value.hint
