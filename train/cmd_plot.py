"""`slim-train plot RUN [RUN...] --out curves.png`: training curves from each run's
metrics.jsonl (losses, lr, teacher temperature, EMA momentum, throughput), one colour
per run. Needs matplotlib (`pip install 'slim-skeleton[plot]'`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

#: (panel title, metrics.jsonl keys drawn in it)
PANELS = (
    ("loss (total)", ("loss",)),
    ("loss terms: mfm, glcl, koleo", ("mfm", "glcl", "koleo")),
    ("learning rate", ("lr",)),
    ("teacher temperature", ("teacher_temp",)),
    ("teacher EMA momentum", ("momentum",)),
    ("throughput (samples/s)", ("samples_per_s",)),
)


def read_metrics(run_dir: Path) -> list[dict]:
    """The logged steps of a run, in step order (lines cut by a kill are skipped).
    Raises FileNotFoundError naming the file when there is none."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a pretraining run, or it has not "
                                "logged a step yet")
    rows = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "step" in rec:
            rows.append(rec)
    return sorted(rows, key=lambda r: r["step"])


def plot_runs(runs: list[Path], out: Path) -> Path:
    """Draw PANELS for each run into `out` (an image; .png added to other names);
    returns the path written. Raises FileNotFoundError / ValueError for a run without
    metrics, ImportError without matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from slim.ingest.cmd_show import image_path

    data = {Path(r): read_metrics(Path(r)) for r in runs}
    empty = [str(r) for r, rows in data.items() if not rows]
    if empty:
        raise ValueError(f"no logged step in {', '.join(empty)}/metrics.jsonl")
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), squeeze=False)
    styles = ("-", "--", ":")
    for ax, (title, keys) in zip(axes.flat, PANELS):
        for j, (run, rows) in enumerate(data.items()):
            colour = f"C{j % 10}"
            for s, key in enumerate(keys):
                pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
                if not pts:
                    continue
                x, y = zip(*pts)
                label = run.name + (f" {key}" if len(keys) > 1 else "")
                ax.plot(x, y, styles[s % 3], color=colour, lw=1.2, label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        if ax.lines:
            ax.legend(fontsize=6)
    fig.suptitle("training curves (metrics.jsonl): " + ", ".join(str(r) for r in data), fontsize=9)
    fig.tight_layout()
    path = image_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


@click.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Image to write (.png, .pdf, .svg, .jpg; any other name gets .png added).")
def plot(runs, out):
    """Training curves of one or more runs from their metrics.jsonl: total loss, the MFM /
    GLCL / KoLeo terms, lr, teacher temperature, EMA momentum and throughput against the
    step, one colour per run.

    \b
      slim-train plot runs/demo --out curves.png
      slim-train plot runs/a runs/b --out compare.png
    """
    from slim.ingest.clitools import console, fail
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail("plotting needs matplotlib", "pip install 'slim-skeleton[plot]' (make install includes it)")
    try:
        path = plot_runs([Path(r) for r in runs], Path(out))
    except (FileNotFoundError, ValueError) as e:
        fail(str(e), "pass run folders made by `slim-train pretrain` (see `ls runs/`)")
    console.print(f"wrote {path}")
