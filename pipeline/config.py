"""`PipelineConfig`: every knob of view generation, augmentation and masking, with the
paper's defaults (Appendices B-D, DESIGN.md decisions 4-7)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineConfig:
    # Temporal views (Appendix B). Lengths in frames; ratios are fractions of the valid
    # frames (global views) or of the anchor global interval (local views).
    global_len: int = 64
    global_ratio: tuple[float, float] = (0.5, 1.0)
    local_lens: tuple[int, ...] = (32, 16, 8)
    #: Crops per scale and per anchor: each of the two global views anchors this many
    #: crops, so a batch holds 2 * count views per scale (released code: 1 / 2 / 1).
    local_counts: tuple[int, ...] = (2, 2, 2)
    local_ratios: tuple[tuple[float, float], ...] = ((0.35, 0.7), (0.15, 0.4), (0.05, 0.2))
    # Skeleton-aware augmentations (Appendix D), each applied per view with its p.
    augment: bool = True
    p_rotate: float = 0.5
    p_mirror: float = 0.5
    p_scale: float = 0.5
    rot_y_deg: float = 180.0
    rot_xz_deg: float = 30.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    # Semantic tube masking (Appendix C, DESIGN.md decision 5).
    masking: str = "tube"  # "tube" | "random" (independent tokens, the ablation)
    mask_ratio: tuple[float, float] = (0.5, 0.9)
    mask_local_p: float = 0.5
    #: Minimum tube area on the global grid (64 / patch_t rows); scaled with the number
    #: of temporal patches for local grids (8 -> 4, 2, 1 at 32, 16, 8 frames).
    a_min: float = 8.0
    a_max_frac: float = 0.5
    patch_t: int = 8
    # Test transform: centre crop of this fraction of the valid frames.
    test_crop: float = 0.95

    def __post_init__(self):
        if self.masking not in ("tube", "random"):
            raise ValueError(f"masking must be 'tube' or 'random', got {self.masking!r}")
        if not (len(self.local_lens) == len(self.local_counts) == len(self.local_ratios)):
            raise ValueError("local_lens, local_counts and local_ratios need one entry per scale")
        for n in (self.global_len, *self.local_lens):
            if n % self.patch_t:
                raise ValueError(f"view length {n} is not a multiple of patch_t={self.patch_t}")
        lo, hi = self.global_ratio
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"global_ratio must satisfy 0 < lo <= hi <= 1, got {self.global_ratio}")
        lo, hi = self.mask_ratio
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"mask_ratio must satisfy 0 <= lo <= hi <= 1, got {self.mask_ratio}")

    def a_min_for(self, grid_t: int) -> float:
        """A_min for a grid with `grid_t` temporal patches (8 on the global grid)."""
        return self.a_min * grid_t / (self.global_len // self.patch_t)
