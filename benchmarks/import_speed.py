"""Speed and peak memory of `slim-ingest ntu60 --from pyskl|ctrgcn|stgcn` on synthetic
files of a chosen size (default: NTU-60's 56,578 samples with names chosen so that the
official split sizes hold and `slim-ingest verify` can pass; lengths 32-300 frames, mean
~80 like NTU, 10 % two-person), `verify` on the result, and raw ingest of NTU-size
`.skeleton` files measured in the same run (same machine, same load). Not part of
`make bench` (it writes up to ~10 GB); run by hand:

    nice -n 10 .venv/bin/python -m benchmarks.import_speed --format pyskl --tmp /tmp/x

Formats: pyskl (protocol-2 pickle as mmcv.dump writes it), ctrgcn (NTU60_CS.npz as
CTR-GCN's seq_transformation.py lays it out, np.savez: stored), ctrgcn-z (the same with
np.savez_compressed), stgcn (an xsub folder as 2s-AGCN / MS-G3D write it, pre-normalized:
actor 1's joint 1 at the origin, trailing frames padded by repeating the sequence).

Prints one JSON line: samples, source bytes, import seconds and samples/s (the CLI, in a
child process), its peak RSS (VmHWM) and RSS / source size, verify's result and seconds,
and raw ingest files/s (2 workers) with import samples/s / raw files/s.
"""
from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from slim.ingest import ntu_names


def official_names_ntu60() -> list[str]:
    """56,578 sorted NTU-60 names whose split sizes are the official ones (X-Sub 40,091 /
    16,487, X-View 37,646 / 18,932): 158 (setup, performer) pairs x 3 cameras x 2
    replications x 60 actions minus the official missing list. The pairs are those of
    the missing list (107) plus the first unused ones until 112 have a training
    performer and 46 do not (NTU-60 has 158 pairs, 112 of them training performers)."""
    missing = ntu_names.official_missing("ntu60")
    pairs = {(int(n[1:4]), int(n[9:12])) for n in missing}
    want = {True: 112, False: 46}
    have = {k: sum((p in ntu_names.XSUB_TRAIN_60) == k for _, p in pairs) for k in want}
    for s in range(1, 18):
        for p in range(1, 41):
            k = p in ntu_names.XSUB_TRAIN_60
            if (s, p) not in pairs and have[k] < want[k]:
                pairs.add((s, p))
                have[k] += 1
    names = [f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}" for s, p in pairs for c in (1, 2, 3)
             for r in (1, 2) for a in range(1, 61)]
    return sorted(n for n in names if n not in missing)


def _names(n: int) -> list[str]:
    names = official_names_ntu60()
    if n >= len(names):
        return names
    idx = np.linspace(0, len(names) - 1, n).round().astype(int)
    return [names[i] for i in idx]


def _length(rng) -> int:
    return int(np.clip(rng.gamma(4.0, 20.0), 32, 300))


def make_pyskl(path: Path, names: list[str], seed: int = 0, protocol: int = 2) -> None:
    rng = np.random.default_rng(seed)
    anns = []
    for name in names:
        t = _length(rng)
        m = 2 if rng.random() < 0.1 else 1
        kp = (rng.normal(size=(m, t, 25, 3)) * 0.3 + [0, 0, 3]).astype(np.float16)
        anns.append(dict(frame_dir=name, label=int(name[-3:]) - 1, total_frames=t, keypoint=kp))
    split = {"xsub_train": [a for a in names if int(a[9:12]) in ntu_names.XSUB_TRAIN_60],
             "xsub_val": [a for a in names if int(a[9:12]) not in ntu_names.XSUB_TRAIN_60],
             "xview_train": [a for a in names if "C001" not in a],
             "xview_val": [a for a in names if "C001" in a]}
    with open(path, "wb") as fh:
        pickle.dump(dict(split=split, annotations=anns), fh, protocol=protocol)


def make_ctrgcn(path: Path, names: list[str], seed: int = 0, compressed: bool = False) -> None:
    """NTU60_CS.npz layout: x [N, 300, 150] float32 zero-padded, y one-hot [N, 60], in
    the order of CTR-GCN's get_indices; written member by member so the generator never
    holds the whole array."""
    from slim.ingest.from_ctrgcn import reference_order
    rng = np.random.default_rng(seed)
    train, test = reference_order(names, "xsub", "ntu60")
    mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode, allowZip64=True) as z:
        for part, ns in (("train", train), ("test", test)):
            with z.open(f"x_{part}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (len(ns), 300, 150)})
                for _ in ns:
                    x = np.zeros((300, 150), np.float32)
                    t = _length(rng)
                    x[:t, :75] = rng.normal(size=(t, 75)) * 0.3
                    if rng.random() < 0.1:
                        x[:t, 75:] = rng.normal(size=(t, 75)) * 0.3
                    fh.write(x.tobytes())
            y = np.zeros((len(ns), 60))
            y[np.arange(len(ns)), [int(a[-3:]) - 1 for a in ns]] = 1
            with z.open(f"y_{part}.npy", "w") as fh:
                np.lib.format.write_array(fh, y)


def make_stgcn(folder: Path, names: list[str], seed: int = 0) -> None:
    """An xsub folder as 2s-AGCN / MS-G3D write it: {train,val}_data_joint.npy float32
    [N, 3, 300, 25, 2] (pre-normalized: actor 1's joint 1 at 0, repetition padding) and
    {train,val}_label.pkl = (names + '.skeleton', labels), sorted names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val"):
        ns = [n for n in names if (int(n[9:12]) in ntu_names.XSUB_TRAIN_60) == (part == "train")]
        with open(folder / f"{part}_label.pkl", "wb") as fh:
            pickle.dump(([n + ".skeleton" for n in ns], [int(n[-3:]) - 1 for n in ns]), fh)
        with open(folder / f"{part}_data_joint.npy", "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (len(ns), 3, 300, 25, 2)})
            for _ in ns:
                t = _length(rng)
                m = 2 if rng.random() < 0.1 else 1
                seq = (rng.normal(size=(t, m, 25, 3)) * 0.3).astype(np.float32)
                seq[:, :, 1] -= seq[:, :1, 1]
                seq[:, 0, 1] = 0.0
                reps = -(-300 // t)
                full = np.tile(seq, (reps, 1, 1, 1))[:300]          # [300, m, 25, 3]
                x = np.zeros((3, 300, 25, 2), np.float32)
                x[..., :m] = full.transpose(3, 0, 2, 1)
                fh.write(x.tobytes())


def _rss_mb() -> float:
    # VmHWM, not ru_maxrss: after fork + exec Linux reports the parent's peak in
    # ru_maxrss (the generator's, here); VmHWM belongs to this process image only.
    hwm = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM")]
    return int(hwm[0].split()[1]) / 1024


def _child(fmt: str, out: str, sources: list[str]) -> None:
    """Runs the CLI itself (`slim-ingest ntu60 --from ...`) in this process, then verify."""
    from slim.ingest.cli import main as cli
    from slim.ingest.verify import verify
    args = ["ntu60", "--from", fmt, *sources, "--out", out]
    if fmt == "ctrgcn":
        args = ["ntu60", "--from", fmt, sources[0], "--names", sources[1], "--out", out]
    t0 = time.perf_counter()
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise
    dt = time.perf_counter() - t0
    rss = _rss_mb()
    card = json.loads((Path(out) / "ntu60" / "card.json").read_text())
    t1 = time.perf_counter()
    problems = verify(Path(out) / "ntu60")
    print(json.dumps({"samples": card["num_samples"], "seconds": round(dt, 1),
                      "samples_per_s": round(card["num_samples"] / dt, 1), "peak_rss_mb": round(rss),
                      "benchmarks": card["benchmarks"], "skipped": card["source"]["entries_skipped"],
                      "verify_problems": problems[:5], "verify_seconds": round(time.perf_counter() - t1, 1)}))


def raw_ingest_files_per_s(n_files: int, cache: Path, workers: int = 2) -> float:
    """Raw ingest (`benchmarks.ingest`'s NTU-size synthetic files, 2 workers) files/s."""
    import tempfile
    from benchmarks.ingest import make_files
    from slim.ingest.run import IngestConfig, run
    files = make_files(cache, n_files)
    raw = Path(tempfile.mkdtemp(prefix="slim-bench-raw-"))
    for f in files:
        (raw / f.name).symlink_to(f.resolve())
    out = Path(tempfile.mkdtemp(prefix="slim-bench-out-"))
    t0 = time.perf_counter()
    run(IngestConfig("synthetic", (str(raw),), str(out), workers=workers), progress=False,
        log=lambda s: None)
    dt = time.perf_counter() - t0
    shutil.rmtree(out)
    shutil.rmtree(raw)
    return len(files) / dt


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", default="pyskl", choices=["pyskl", "ctrgcn", "ctrgcn-z", "stgcn"])
    ap.add_argument("--n", type=int, default=56578, help="samples (56,578 = NTU-60, verify can pass)")
    ap.add_argument("--protocol", type=int, default=2, help="pickle protocol (mmcv.dump: 2)")
    ap.add_argument("--tmp", default="/tmp/slim_import_speed")
    ap.add_argument("--raw-files", type=int, default=480,
                    help="NTU-size .skeleton files for the raw-ingest comparison (0: skip)")
    ap.add_argument("--keep", action="store_true", help="keep the source and output")
    ap.add_argument("--child", nargs="+", default=None)
    a = ap.parse_args(argv)
    if a.child:
        _child(a.child[0], a.child[1], a.child[2:])
        return
    tmp = Path(a.tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = _names(a.n)
    t0 = time.perf_counter()
    if a.format == "pyskl":
        srcs = [tmp / "ntu60_3danno.pkl"]
        make_pyskl(srcs[0], names, protocol=a.protocol)
        size = srcs[0].stat().st_size
    elif a.format.startswith("ctrgcn"):
        srcs = [tmp / "NTU60_CS.npz", tmp / "skes_available_name.txt"]
        make_ctrgcn(srcs[0], names, compressed=a.format == "ctrgcn-z")
        srcs[1].write_text("\n".join(names) + "\n")
        size = srcs[0].stat().st_size
    else:
        srcs = [tmp / "xsub"]
        make_stgcn(srcs[0], names)
        size = sum(p.stat().st_size for p in srcs[0].iterdir())
    gen_s = time.perf_counter() - t0
    fmt = "ctrgcn" if a.format.startswith("ctrgcn") else a.format
    r = subprocess.run([sys.executable, "-m", "benchmarks.import_speed", "--child", fmt,
                        str(tmp / "data"), *map(str, srcs)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stdout[-3000:] + r.stderr[-3000:])
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res.update(format=a.format, protocol=a.protocol if a.format == "pyskl" else None,
               source_mb=round(size / 2**20), generate_seconds=round(gen_s, 1),
               rss_over_source=round(res["peak_rss_mb"] / (size / 2**20), 3))
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.raw_files:
        fps = raw_ingest_files_per_s(a.raw_files, Path(a.tmp + "-raw"))
        res.update(raw_ingest_files_per_s=round(fps, 1),
                   import_over_raw=round(res["samples_per_s"] / fps, 2))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
