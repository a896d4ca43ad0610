"""`slim-ingest show DIR ID --out FILE.png [--views]`: draw a stored sample's skeleton
and, with --views, the pretraining views the pipeline makes of it (after augmentation,
masked tokens in red), so the data and the pipeline can be checked by eye.

A command module may reach across stages (DESIGN.md): --views uses slim.pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from slim.ingest.clitools import console, fail

PERSON_COLOURS = ("tab:blue", "tab:orange")
MASKED = "red"


@dataclass(frozen=True)
class ShowConfig:
    data_dir: str
    sample_id: str
    out: str
    views: bool = False
    frames: int = 8
    seed: int = 0


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        fail("drawing needs matplotlib", "pip install 'slim-skeleton[plot]'")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _draw(ax, joints: np.ndarray, colour: str, bones, masked: np.ndarray | None = None) -> None:
    """joints: [V, 3] (metres), drawn as x (lateral) against y (up); bones: the layout's
    (child, parent) pairs; masked: bool [V]."""
    if not joints.any():
        return
    for c, p in bones:
        ax.plot(joints[[c, p], 0], joints[[c, p], 1], color=colour, lw=1.2)
    ax.scatter(joints[:, 0], joints[:, 1], s=6, color=colour, zorder=3)
    if masked is not None and masked.any():
        ax.scatter(joints[masked, 0], joints[masked, 1], s=22, color=MASKED, zorder=4)


def _row(axes, seq: np.ndarray, frames: np.ndarray, title: str, bones, mask=None, patch_t=8) -> None:
    """seq: [M, T, V, 3]; mask: bool [T // patch_t, V] or None; one frame per axis."""
    pts = seq[np.any(seq != 0, axis=-1)][:, :2]  # present joints, x and y
    centre = (pts.max(0) + pts.min(0)) / 2 if pts.size else np.zeros(2)
    half = max(float((pts.max(0) - pts.min(0)).max()) / 2 * 1.1, 0.1) if pts.size else 1.0
    for ax, t in zip(axes, frames):
        for m in range(seq.shape[0]):
            _draw(ax, seq[m, t], PERSON_COLOURS[m % 2], bones, None if mask is None else mask[t // patch_t])
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"t={t}", fontsize=7)
    axes[0].set_ylabel(title, fontsize=8, rotation=0, ha="right", va="center")
    for ax in axes[len(frames):]:
        ax.axis("off")


def render(cfg: ShowConfig) -> Path:
    from slim.ingest.h5store import H5Samples

    store = H5Samples(Path(cfg.data_dir))
    try:
        i = store.ids.index(cfg.sample_id)
    except ValueError:
        fail(f"{store.path}: no sample {cfg.sample_id!r}",
             f"ids look like {store.ids[0]!r}; `slim-ingest info {cfg.data_dir}` lists the dataset")
    joints = store.read(i)  # [T, M, V, 3]
    layout = store.layout
    nj = layout.num_joints
    plt = _pyplot()
    seq = joints.transpose(1, 0, 2, 3)
    k = cfg.frames
    rows = [(seq, np.linspace(0, seq.shape[1] - 1, k).round().astype(int),
             f"{cfg.sample_id}\n{seq.shape[1]} frames", None)]
    if cfg.views:
        from slim.pipeline.config import PipelineConfig
        from slim.pipeline.transform import pretrain_batch

        pc = PipelineConfig()
        out = pretrain_batch([joints], pc, np.random.default_rng(cfg.seed), layout)
        for g in range(2):
            x, m = out["global"][0, g], out["global_mask"][0, g].reshape(-1, nj)
            rows.append((x[None], np.linspace(0, x.shape[0] - 1, k).round().astype(int),
                         f"global {g + 1}\n{m.mean():.0%} masked", m))
        for scale in out["locals"]:
            for v in (0, scale["x"].shape[1] // 2):  # first crop of each anchor
                x, m = scale["x"][0, v], scale["mask"][0, v].reshape(-1, nj)
                n = min(k, x.shape[0])
                rows.append((x[None], np.linspace(0, x.shape[0] - 1, n).round().astype(int),
                             f"local {x.shape[0]}f\nanchor {int(scale['anchor'][v]) + 1}\n"
                             f"{m.mean():.0%} masked", m))
    fig, axes = plt.subplots(len(rows), k, figsize=(1.3 * k + 1.2, 1.45 * len(rows)), squeeze=False)
    for axr, (s, fr, title, m) in zip(axes, rows):
        _row(axr, s, fr, title, layout.bones, m)
    fig.suptitle("x (lateral) vs y (up); red = masked tokens" if cfg.views else "x (lateral) vs y (up)",
                 fontsize=9)
    fig.tight_layout()
    out_path = Path(cfg.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


@click.command("show")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("sample_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write")
@click.option("--views", is_flag=True, help="also draw the pretraining views and their masks")
@click.option("--frames", default=8, show_default=True, help="frames drawn per row")
@click.option("--seed", default=0, show_default=True, help="seed of the views' randomness")
def show(data_dir, sample_id, out, views, frames, seed):
    """Draw sample SAMPLE_ID of the dataset in DATA_DIR (e.g. data/synthetic)."""
    cfg = ShowConfig(data_dir, sample_id, out, views, frames, seed)
    path = render(cfg)
    console.print(f"wrote {path}")
