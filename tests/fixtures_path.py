"""The real data fixtures: `tests/fixtures/` inside the checkout (see its SOURCES.md).
Nothing outside the checkout is read."""
from pathlib import Path

FIX = Path(__file__).resolve().parent / "fixtures"
