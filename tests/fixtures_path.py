"""Where the real data fixtures are: `$SLIM_FIXTURES`, else `shared/fixtures` beside the
checkout (how CI lays it out), else the workplace's /work/shared/fixtures."""
import os
from pathlib import Path


def fixtures_dir() -> Path:
    candidates = [os.environ.get("SLIM_FIXTURES"),
                  Path(__file__).resolve().parents[2] / "shared" / "fixtures",
                  "/work/shared/fixtures"]
    for c in candidates:
        if c and (Path(c) / "ntu").is_dir():
            return Path(c)
    raise FileNotFoundError("real data fixtures not found: set SLIM_FIXTURES to the folder holding "
                            "ntu/, pku/ and ntu_stats/ (shared/fixtures beside the checkout)")


FIX = fixtures_dir()
