"""Speed and peak memory of `--from pyskl` / `--from ctrgcn` on synthetic files of a
chosen size (default: NTU-60's 56,578 samples; lengths 32-300 frames, mean ~80 like NTU,
10 % two-person). Not part of `make bench` (it writes GBs); run by hand:

    nice -n 10 .venv/bin/python -m benchmarks.import_speed --format pyskl --n 56578 --tmp /tmp/x

Prints one JSON line: samples, source bytes, seconds, samples/s, peak RSS (MB) of the
import process, RSS / source size.
"""
from __future__ import annotations

import argparse
import json
import pickle
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from slim.ingest import ntu_names


def _names(n: int) -> list[str]:
    out = []
    for s in range(1, 18):
        for c in range(1, 4):
            for p in range(1, 41):
                for r in range(1, 3):
                    for a in range(1, 61):
                        out.append(f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}")
                        if len(out) == n:
                            return sorted(out)
    return sorted(out)


def make_pyskl(path: Path, n: int, seed: int = 0, protocol: int = 2) -> None:
    rng = np.random.default_rng(seed)
    names = _names(n)
    anns = []
    for name in names:
        t = int(np.clip(rng.gamma(4.0, 20.0), 32, 300))
        m = 2 if rng.random() < 0.1 else 1
        kp = (rng.normal(size=(m, t, 25, 3)) * 0.3 + [0, 0, 3]).astype(np.float16)
        anns.append(dict(frame_dir=name, label=int(name[-3:]) - 1, total_frames=t, keypoint=kp))
    split = {"xsub_train": [a for a in names if int(a[9:12]) in ntu_names.XSUB_TRAIN_60],
             "xsub_val": [a for a in names if int(a[9:12]) not in ntu_names.XSUB_TRAIN_60],
             "xview_train": [a for a in names if "C001" not in a],
             "xview_val": [a for a in names if "C001" in a]}
    with open(path, "wb") as fh:
        pickle.dump(dict(split=split, annotations=anns), fh, protocol=protocol)


def make_ctrgcn(path: Path, n: int, seed: int = 0) -> None:
    """NTU60_CS.npz layout: x [N, 300, 150] float32 zero-padded, y one-hot [N, 60];
    written member by member so the generator never holds the whole array."""
    import zipfile
    rng = np.random.default_rng(seed)
    names = _names(n)
    train = [a for a in names if int(a[9:12]) in ntu_names.XSUB_TRAIN_60]
    test = [a for a in names if int(a[9:12]) not in ntu_names.XSUB_TRAIN_60]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for part, ns in (("train", train), ("test", test)):
            with z.open(f"x_{part}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (len(ns), 300, 150)})
                for _ in ns:
                    x = np.zeros((300, 150), np.float32)
                    t = int(np.clip(rng.gamma(4.0, 20.0), 32, 300))
                    x[:t, :75] = rng.normal(size=(t, 75)) * 0.3
                    fh.write(x.tobytes())
            y = np.zeros((len(ns), 60))
            y[np.arange(len(ns)), [int(a[-3:]) - 1 for a in ns]] = 1
            with z.open(f"y_{part}.npy", "w") as fh:
                np.lib.format.write_array(fh, y)


def _child(fmt: str, src: str, out: str) -> None:
    from slim.ingest.importer import run_import
    t0 = time.perf_counter()
    _, card = run_import("ntu60", fmt, [src], out, log=lambda s: None)
    dt = time.perf_counter() - t0
    # VmHWM, not ru_maxrss: after fork + exec Linux reports the parent's peak in
    # ru_maxrss (the generator's, here); VmHWM belongs to this process image only.
    hwm = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM")]
    rss = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples": card["num_samples"], "seconds": round(dt, 1),
                      "samples_per_s": round(card["num_samples"] / dt, 1), "peak_rss_mb": round(rss)}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", default="pyskl", choices=["pyskl", "ctrgcn"])
    ap.add_argument("--n", type=int, default=56578)
    ap.add_argument("--protocol", type=int, default=2, help="pickle protocol (mmcv.dump: 2)")
    ap.add_argument("--tmp", default="/tmp/slim_import_speed")
    ap.add_argument("--child", nargs=3, default=None)
    a = ap.parse_args(argv)
    if a.child:
        _child(*a.child)
        return
    tmp = Path(a.tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if a.format == "pyskl":
        src = tmp / "ntu60_3danno.pkl"
        make_pyskl(src, a.n, protocol=a.protocol)
    else:
        src = tmp / "NTU60_CS.npz"
        make_ctrgcn(src, a.n)
    size = src.stat().st_size
    r = subprocess.run([sys.executable, "-m", "benchmarks.import_speed", "--child", a.format, str(src),
                        str(tmp / "data")], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res.update(format=a.format, protocol=a.protocol if a.format == "pyskl" else None, source_mb=round(size / 2**20), rss_over_source=round(res["peak_rss_mb"] / (size / 2**20), 2))
    print(json.dumps(res))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
