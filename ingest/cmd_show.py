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
    person: int | None = None     # 1-based person whose views are drawn (None: random by seed)
    preset: str = "paper"         # whose pipeline (view lengths, augmentations) --views draws


IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def image_path(out: str | Path) -> Path:
    """The file to write: `out` when its suffix is an image format matplotlib writes,
    else `out` + ".png" (so `--out x` writes x.png)."""
    p = Path(out)
    return p if p.suffix.lower() in IMAGE_SUFFIXES else p.with_name(p.name + ".png")


def class_name(data_dir: Path, label: int) -> str:
    """"<label>: <name>" from the manifest's class names ("<label>" when there are none)."""
    try:
        from slim.ingest.manifest import read_manifest
        _, meta = read_manifest(data_dir)
        names = meta.get("class_names") or []
    except (OSError, ValueError):
        names = []
    return f"A{label + 1:03d} {names[label]}" if 0 <= label < len(names) else f"class {label}"


def preset_pipeline(preset: str):
    """The PipelineConfig that `slim-train pretrain --preset PRESET` trains with (view
    lengths and counts, augmentation ranges, masking). Exits 2 (error + hint) on an
    unknown preset name."""
    from slim.train.config import PRESETS, resolve
    if preset not in PRESETS:
        fail(f"unknown preset {preset!r}",
             f"choose one of {', '.join(PRESETS)} (the presets of `slim-train pretrain --preset`)")
    return resolve(preset).pipeline


def views_summary(preset: str) -> str:
    """"views of preset P: global G f, locals L1/L2 f": the view lengths (frames) that
    --views draws for `preset` (exits 2 on an unknown preset)."""
    pc = preset_pipeline(preset)
    return (f"views of preset {preset}: global {pc.global_len} f, locals "
            f"{'/'.join(str(n) for n in pc.local_lens)} f")


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


def _row(axes, seq: np.ndarray, frames: np.ndarray, title: str, bones, mask=None, patch_t=8,
         person: int = 0) -> None:
    """seq: [M, T, V, 3]; mask: bool [T // patch_t, V] or None; one frame per axis;
    person: colour index of seq's first person (a view of person 2 keeps its colour)."""
    pts = seq[np.any(seq != 0, axis=-1)][:, :2]  # present joints, x and y
    centre = (pts.max(0) + pts.min(0)) / 2 if pts.size else np.zeros(2)
    half = max(float((pts.max(0) - pts.min(0)).max()) / 2 * 1.1, 0.1) if pts.size else 1.0
    for ax, t in zip(axes, frames):
        for m in range(seq.shape[0]):
            _draw(ax, seq[m, t], PERSON_COLOURS[(person + m) % 2], bones,
                  None if mask is None else mask[t // patch_t])
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
    label = class_name(Path(cfg.data_dir), int(store.labels[i]))
    layout = store.layout
    nj = layout.num_joints
    plt = _pyplot()
    seq = joints.transpose(1, 0, 2, 3)
    k = cfg.frames
    present = [m for m in range(seq.shape[0]) if seq[m].any()]
    rows = [(seq, np.linspace(0, seq.shape[1] - 1, k).round().astype(int),
             f"{cfg.sample_id}\n{seq.shape[1]} frames\n{len(present)} person(s)", None)]
    note = ""
    p_drawn = 0
    if cfg.views:
        from slim.pipeline.transform import pretrain_batch

        pc = preset_pipeline(cfg.preset)
        rng = np.random.default_rng(cfg.seed)
        if cfg.person is not None:
            if not 1 <= cfg.person <= seq.shape[0] or cfg.person - 1 not in present:
                fail(f"{cfg.sample_id} has no person {cfg.person} (present: "
                     f"{', '.join(str(m + 1) for m in present) or 'none'})",
                     "choose one of the present persons with --person, or leave it out")
            p = cfg.person - 1
        else:  # as the pipeline does: one present person, drawn at random
            p = int(present[rng.integers(len(present))]) if len(present) > 1 else (present or [0])[0]
        if seq.shape[0] > 1:
            note = (f"; views of person {p + 1} of {seq.shape[0]}: pretraining takes one person per "
                    "sample, drawn at random each time (--person to choose)")
        p_drawn = p
        note += f"; {views_summary(cfg.preset)}"
        out = pretrain_batch([joints[:, p:p + 1]], pc, rng, layout)
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
    for r, (axr, (s, fr, title, m)) in enumerate(zip(axes, rows)):
        _row(axr, s, fr, title, layout.bones, m, person=0 if r == 0 else p_drawn)
    legend = "x (lateral) vs y (up)" + ("; red = masked tokens" if cfg.views else "")
    fig.suptitle(f"{cfg.sample_id} · {label}\n{legend}{note}", fontsize=9, wrap=True)
    fig.tight_layout()
    out_path = image_path(cfg.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


@click.command("show")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("sample_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Image to write (.png, .pdf, .svg, .jpg; any other name gets .png added)")
@click.option("--views", is_flag=True, help="also draw the pretraining views and their masks")
@click.option("--frames", default=8, show_default=True, type=click.IntRange(min=1),
              help="frames drawn per row")
@click.option("--seed", default=0, show_default=True, help="seed of the views' randomness")
@click.option("--person", default=None, type=click.IntRange(min=1),
              help="with --views on a two-person sample: whose views to draw (1 or 2; default: "
                   "drawn at random, as pretraining does)")
@click.option("--preset", default="paper", show_default=True,
              help="with --views: draw the views of this `slim-train pretrain` preset's pipeline "
                   "(view lengths, augmentation ranges, masking), e.g. cpu-real")
def show(data_dir, sample_id, out, views, frames, seed, person, preset):
    """Draw sample SAMPLE_ID of the dataset in DATA_DIR (e.g. data/synthetic), titled with
    its class; with --views also the pretraining views (one person per sample)."""
    cfg = ShowConfig(data_dir, sample_id, out, views, frames, seed, person, preset)
    path = render(cfg)
    added = "" if Path(out) == path else f" (--out {out} had no image suffix: .png added)"
    console.print(f"wrote {path}{added}" + (f"; {views_summary(preset)}" if views else ""))
