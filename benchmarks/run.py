"""`make bench [ONLY=stage]`: run benchmarks/<stage>.py for each stage (or one).
`make bench ONLY=nwucla [NWUCLA=PATH]` runs the real-data benchmark (benchmarks/nwucla.py)."""
from __future__ import annotations

import argparse
import importlib
import sys

STAGES = ("ingest", "pipeline", "model", "train", "eval", "deploy")
#: Longer studies, run only when named: `make bench ONLY=ablations`, `ONLY=nwucla`,
#: `ONLY=realcurve`, `ONLY=loader`, `ONLY=shards`, `ONLY=mfm_chunk`, `ONLY=gpu` (= make bench-gpu).
EXTRA = ("ablations", "nwucla", "realcurve", "loader", "gpu", "shards", "mfm_chunk")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=STAGES + EXTRA, default=None)
    ap.add_argument("--nwucla", default=None, help="NW-UCLA folder or zip (ONLY=nwucla)")
    ap.add_argument("--publish", action="store_true",
                    help="write the tracked bench/results.json (the README's figures) instead of "
                         "the untracked bench/local.json")
    args, rest = ap.parse_known_args(argv)
    if args.publish:
        import os

        from .common import PUBLISH_ENV
        os.environ[PUBLISH_ENV] = "1"
    failed = []
    for stage in ([args.only] if args.only else STAGES):
        mod = importlib.import_module(f"benchmarks.{stage}")
        try:
            extra = (["--nwucla", args.nwucla] if stage in ("nwucla", "realcurve") and args.nwucla else [])
            mod.main(extra + (rest if args.only else []))
        except Exception as exc:  # report every stage, then fail
            print(f"benchmark {stage} failed: {exc!r}", file=sys.stderr)
            failed.append(stage)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
