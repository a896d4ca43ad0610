"""The paper's Top-1 numbers (PROTOCOLS.md "Paper results"), keyed the way result files
are: (protocol, dataset, benchmark, variant). Variant: semi ratio ("1pct"/"10pct") or,
for transfer, the source dataset."""
from __future__ import annotations

PAPER: dict[tuple[str, str, str, str], float] = {
    ("linear", "ntu60", "xsub", ""): 87.9,
    ("linear", "ntu60", "xview", ""): 93.2,
    ("linear", "ntu120", "xsub", ""): 81.2,
    ("linear", "ntu120", "xset", ""): 83.6,
    ("linear", "pku2", "xsub", ""): 59.7,
    ("semi", "ntu60", "xsub", "1pct"): 72.1,
    ("semi", "ntu60", "xsub", "10pct"): 88.8,
    ("semi", "ntu60", "xview", "1pct"): 75.8,
    ("semi", "ntu60", "xview", "10pct"): 91.9,
    ("retrieval", "ntu60", "xsub", ""): 72.5,
    ("retrieval", "ntu60", "xview", ""): 89.9,
    ("transfer", "pku2", "xsub", "ntu60"): 72.7,
    ("transfer", "pku2", "xsub", "ntu120"): 75.3,
}


def paper_number(protocol: str, dataset: str, benchmark: str, variant: str = "") -> float | None:
    """The paper's Top-1 % for this setting, or None where the paper reports none."""
    return PAPER.get((protocol, dataset, benchmark, variant))
