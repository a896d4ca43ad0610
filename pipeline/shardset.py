"""Where the pretraining shards live and how one is fetched: a local folder, a brace
pattern of URLs, `pipe:COMMAND`, or an object-store prefix, all opened through
WebDataset's own URL handling (`webdataset.gopen`: files, `pipe:`, http(s) via curl) or,
for s3:// gs:// and other fsspec schemes, through fsspec (the `[remote]` extra).

A spec resolves to a ShardSet: the shard URLs in index order plus the folder's index
(`shards.json`, written by the ingest: name, samples, bytes, sha256 per shard). A remote
reader needs the index (epoch size and each rank's share without listing a bucket; every
downloaded shard is checked against it); a local folder of an older ingest without one
is read as before, unchecked, with a note (`slim-ingest verify --fix-index` writes it).

Fetching a shard (`ShardReader.read`) downloads it whole, checks its size and sha256,
then parses the tar: a shard is used entirely or not at all, so a fault never leaves a
half-read shard in the stream. A failed fetch (connection reset, truncated tar, checksum
mismatch, command failure) is retried `retries` times after `wait`, 2 `wait`, 4 `wait`
... seconds (each wait capped at MAX_WAIT), then skipped; every retry and skip is an
event the loader hands to the trainer (logged and counted in metrics.jsonl).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

#: Same names as the writer (slim.ingest.shards), repeated to keep the pipeline free of
#: ingest imports at worker start.
INDEX_NAME = "shards.json"
INDEX_FORMAT = "slim-shards/1"
#: Longest single back-off between retries of one shard, seconds.
MAX_WAIT = 30.0
#: Schemes WebDataset's gopen opens itself; any other scheme goes to fsspec.
GOPEN_SCHEMES = ("", "file", "pipe", "http", "https")
REMOTE_HINT = "install the remote extra: pip install 'slim-skeleton[remote]' (fsspec, s3fs, gcsfs)"
_BRACE = re.compile(r"\{[^{}]*\.\.[^{}]*\}")
_SEP = " | hint: "


class ShardError(ValueError):
    """A shard spec, index or stream the reader refuses. str() is "message | hint:
    hint", so the hint survives a DataLoader worker (torch re-raises the text only);
    `split_hint` takes it apart again."""

    def __init__(self, message: str, hint: str | None = None):
        if hint is None and _SEP in message:
            message, hint = message.split(_SEP, 1)
        super().__init__(message + (_SEP + hint if hint else ""))
        self.message, self.hint = message, hint


def split_hint(text: str) -> tuple[str, str | None]:
    """(message, hint) of a ShardError's text (hint None when it carries none)."""
    return tuple(text.split(_SEP, 1)) if _SEP in text else (text, None)


def is_url(spec: str) -> bool:
    """True for `pipe:...` and scheme://... specs (a Windows drive letter is no scheme)."""
    return spec.startswith("pipe:") or len(urlparse(spec).scheme) > 1


def open_url(url: str):
    """A binary file object for `url`: webdataset.gopen for local paths, file://,
    pipe: and http(s):// (curl); fsspec for every other scheme (s3://, gs://, memory://
    ...). Raises ShardError with an install hint when fsspec or its backend is missing."""
    scheme = "pipe" if url.startswith("pipe:") else urlparse(url).scheme
    if len(scheme) <= 1 or scheme in GOPEN_SCHEMES:
        import webdataset as wds
        return wds.gopen(url, "rb")
    try:
        import fsspec
    except ImportError:
        raise ShardError(f"{url}: {scheme}:// shards are read through fsspec, which is not installed",
                         REMOTE_HINT) from None
    try:
        return fsspec.open(url, "rb").open()
    except (ImportError, ValueError) as exc:   # fsspec: "Install s3fs to access S3", unknown protocol
        raise ShardError(f"{url}: fsspec cannot open {scheme}:// ({exc})", REMOTE_HINT) from None


def _read_all(url: str) -> bytes:
    with open_url(url) as f:   # a pipe's close raises on a failed command (curl: reset, HTTP error)
        return f.read()


@dataclass(frozen=True)
class ShardSet:
    """Shards of one split: `urls` (what open_url opens, in index order), `entries`
    (the index's {"name", "samples", "bytes", "sha256"} per shard, or None for an
    unindexed local folder), `encoding` (the index's, "f32" when unindexed), `where`
    (the spec, for messages)."""
    urls: list[str]
    entries: list[dict] | None
    encoding: str = "f32"
    where: str = ""
    note: str | None = field(default=None, compare=False)

    @property
    def num_samples(self) -> int | None:
        return None if self.entries is None else sum(int(e["samples"]) for e in self.entries)

    def entry(self, i: int) -> dict | None:
        return None if self.entries is None else self.entries[i]

    def name(self, i: int) -> str:
        return self.entries[i]["name"] if self.entries is not None else os.path.basename(self.urls[i])


def _index_next_to(pattern: str) -> str:
    """The shards.json beside a braced shard pattern: the braced path segment replaced
    (`https://h/x/train-{000000..000123}.tar` -> `https://h/x/shards.json`; inside a
    `pipe:` command, the braced word's last segment)."""
    m = _BRACE.search(pattern)
    start = max(pattern.rfind("/", 0, m.start()), pattern.rfind(" ", 0, m.start())) + 1
    end = len(pattern)
    for stop in (" ", "/"):
        j = pattern.find(stop, m.end())
        if j != -1:
            end = min(end, j)
    return pattern[:start] + INDEX_NAME + pattern[end:]


def _basename(url: str) -> str:
    """The shard file name of an expanded URL (in a pipe: command, the word ending .tar)."""
    if url.startswith("pipe:"):
        words = [w for w in url[5:].split() if w.endswith(".tar")]
        return os.path.basename(words[-1]) if words else url
    return os.path.basename(urlparse(url).path if is_url(url) else url)


def parse_index(text: bytes | str, where: str) -> dict:
    """shards.json's content, checked for its format and fields; ShardError otherwise."""
    try:
        index = json.loads(text)
        for e in index["shards"]:
            e["name"], e["samples"], e["bytes"], e["sha256"]   # noqa: B018 (fields present)
    except (ValueError, KeyError, TypeError) as exc:
        raise ShardError(f"{where}: not a shard index ({type(exc).__name__}: {exc})",
                         "copy the shards.json the ingest wrote next to the shards") from None
    if index.get("format") != INDEX_FORMAT:
        raise ShardError(f"{where}: index format {index.get('format')!r}, this reader knows {INDEX_FORMAT!r}",
                         "re-ingest with this version, or `slim-ingest verify --fix-index` the dataset")
    return index


def resolve(spec: str, default_folder: Path) -> ShardSet:
    """The ShardSet of `spec` ("" = `default_folder`, the dataset's own shard folder).

    spec: a local folder; a folder URL or object-store prefix (`s3://bucket/ntu60/xsub_train`,
    `https://host/ntu60/xsub_train/`: shards named by the index found there); a brace
    pattern of paths or URLs (`https://host/x/train-{000000..000123}.tar`); or
    `pipe:COMMAND` with a brace pattern (`pipe:curl -s https://host/x/train-{000000..000123}.tar`).
    Patterns find their index beside the shards (`_index_next_to`). Raises ShardError when
    the index cannot be read or names other shards than the spec."""
    spec = str(spec or default_folder)
    if not is_url(spec) and not _BRACE.search(spec):
        folder = Path(spec)
        if not folder.is_dir():
            raise ShardError(f"{folder}: no such shard folder",
                             "give data.shards as a folder, a URL pattern, pipe:COMMAND or s3:// / gs:// prefix, "
                             "or re-run `slim-ingest` (it writes the shards)")
        if (folder / INDEX_NAME).is_file():
            index = parse_index((folder / INDEX_NAME).read_bytes(), str(folder / INDEX_NAME))
            return ShardSet([str(folder / e["name"]) for e in index["shards"]], index["shards"],
                            index.get("encoding", "f32"), str(folder))
        tars = sorted(folder.glob("*.tar"))
        if not tars:
            raise ShardError(f"{folder}: no .tar shards", "re-run `slim-ingest` (it writes shards) or use "
                             "the HDF5 source (data.source='h5')")
        return ShardSet([str(p) for p in tars], None, "f32", str(folder),
                        note=f"{folder} has no {INDEX_NAME} (ingested before shard indexes): shards are read "
                             f"unchecked; `slim-ingest verify --fix-index DATASET` writes it")
    braced = _BRACE.search(spec) is not None
    index_url = _index_next_to(spec) if braced else spec.rstrip("/") + "/" + INDEX_NAME
    try:
        raw = _read_all(index_url)
    except ShardError:
        raise
    except Exception as exc:  # noqa: BLE001 - any opener's failure (OSError, curl status, fsspec)
        raise ShardError(f"{index_url}: cannot read the shard index ({type(exc).__name__}: {exc})",
                         f"upload the split folder's {INDEX_NAME} next to its shards (the reader needs it to "
                         "know the epoch size and check each shard)") from None
    index = parse_index(raw, index_url)
    entries = index["shards"]
    names = [e["name"] for e in entries]
    if braced:
        try:
            from webdataset.shardlists import expand_urls   # braces (and WDS_ variables)
        except ImportError:                                  # an older webdataset: braces only
            from braceexpand import braceexpand as expand_urls
        urls = list(expand_urls(spec))
        got = [_basename(u) for u in urls]
        if got != names:
            diff = sorted(set(got) ^ set(names))[:3]
            raise ShardError(f"{spec}: names {len(got)} shards, its index {index_url} lists {len(names)} "
                             f"(first differences: {diff})",
                             "make the brace range match the index (shards.json), e.g. "
                             f"{{000000..{len(names) - 1:06d}}}")
    else:
        urls = [spec.rstrip("/") + "/" + n for n in names]
    return ShardSet(urls, entries, index.get("encoding", "f32"), spec)


class ShardUnreadable(Exception):
    """A shard that failed every try (after the bounded retries)."""


def parse_tar(data: bytes, url: str) -> list[dict]:
    """Samples ({"__key__", "npy" or "npy.gz", "json"}) of a shard's bytes, in order,
    via WebDataset's tar expander and key grouping. Raises ValueError on a damaged tar
    or a sample lacking its joints or metadata."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    out = []
    for s in group_by_keys(tar_file_expander([{"stream": io.BytesIO(data), "url": url}])):
        if "json" not in s or ("npy" not in s and "npy.gz" not in s):
            raise ValueError(f"{url}: sample {s.get('__key__')} lacks .npy or .json")
        out.append(s)
    return out


def joints_bytes(sample: dict) -> bytes:
    """The .npy bytes of a raw shard sample (gunzipped for the .gz encodings)."""
    return sample["npy"] if "npy" in sample else gzip.decompress(sample["npy.gz"])


@dataclass
class ShardReader:
    """Fetches whole shards of a ShardSet with bounded retries; `events` collects
    {"shard", "kind": "retry" | "skip", "error"} for the trainer (drained per batch).
    `sleep` is replaceable in tests."""
    shards: ShardSet
    retries: int = 3
    wait: float = 1.0
    events: list[dict] = field(default_factory=list)
    sleep: callable = time.sleep

    def _fetch(self, i: int) -> list[dict]:
        url, e = self.shards.urls[i], self.shards.entry(i)
        data = _read_all(url)
        if e is not None:
            if len(data) != int(e["bytes"]):
                raise ValueError(f"{len(data)} bytes, the index says {e['bytes']} (truncated)")
            digest = hashlib.sha256(data).hexdigest()
            if digest != e["sha256"]:
                raise ValueError(f"sha256 {digest[:12]}..., the index says {e['sha256'][:12]}... (checksum mismatch)")
        samples = parse_tar(data, url)
        if e is not None and len(samples) != int(e["samples"]):
            raise ValueError(f"{len(samples)} samples, the index says {e['samples']}")
        return samples

    def read(self, i: int) -> list[dict]:
        """Raw samples of shard i, in order; ShardUnreadable after 1 + retries failed
        tries (waits wait, 2 wait, ... capped at MAX_WAIT). A ShardError (a missing
        extra) is raised at once: no retry can fix it."""
        name = self.shards.name(i)
        for attempt in range(self.retries + 1):
            try:
                return self._fetch(i)
            except ShardError:
                raise
            except Exception as exc:  # noqa: BLE001 - resets, curl/pipe status, tar and checksum errors
                error = f"{type(exc).__name__}: {exc}"[:300]
                if attempt == self.retries:
                    self.events.append({"shard": name, "kind": "skip", "error": error})
                    raise ShardUnreadable(f"{name}: {error}") from None
                self.events.append({"shard": name, "kind": "retry", "error": error})
                self.sleep(min(self.wait * 2 ** attempt, MAX_WAIT))
        raise AssertionError("unreachable")

    def drain(self) -> list[dict]:
        out, self.events = self.events, []
        return out
