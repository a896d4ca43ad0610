"""`slim-eval features`: per-sample embeddings with ids and labels, to parquet."""
from __future__ import annotations

import click

from .options import (feature_config, feature_options, open_target, run_protocol, say, show_config,
                      target_options)


@click.command("features")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="Output FILE.parquet (id, index, label, split, feature; with metadata) or FILE.csv "
                   "(id, index, label, split, f0..fN; no metadata): the suffix decides.")
@click.option("--split", "parts", type=click.Choice(["train", "test"]), multiple=True,
              help="Which parts of the benchmark (repeatable; default both).")
@target_options
@feature_options
def features(out, parts, run, encoder, data, benchmark, **kw):
    """Write frozen per-sample features (test transform, both persons) to Parquet or CSV."""
    from slim.ingest.clitools import fail

    from .export import FeaturesConfig, output_format, write_features
    try:
        output_format(out)
    except ValueError as e:
        fail(str(e), f"name the file {out.rsplit('.', 1)[0] if '.' in out else out}.parquet or .csv")
    cfg = FeaturesConfig(out=out, parts=tuple(parts) or ("train", "test"), features=feature_config(kw))
    target = open_target(run, encoder, data, benchmark)
    show_config(cfg)
    path, rows = run_protocol(write_features, target, cfg)
    say(f"wrote {rows} rows to {path}")
