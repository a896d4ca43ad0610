"""`slim-eval retrieval`: k-NN action retrieval (train split = gallery, test = queries)."""
from __future__ import annotations

import click

from .options import feature_config, feature_options, open_target, run_protocol, show_config, target_options


@click.command("retrieval")
@click.option("--k", "ks", type=click.IntRange(min=1), multiple=True,
              help="Neighbours (repeatable; default 1, 10, 20).")
@click.option("--temperature", type=float, default=0.07, show_default=True,
              help="DINO vote weighting exp(sim / T) for k > 1.")
@click.option("--query-chunk", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Queries scored per block (memory ~ query-chunk x gallery-chunk floats).")
@click.option("--gallery-chunk", type=click.IntRange(min=1), default=16384, show_default=True,
              help="Gallery samples per block.")
@target_options
@feature_options
def retrieval(ks, temperature, query_chunk, gallery_chunk, run, encoder, data, benchmark, **kw):
    """k-NN retrieval on L2-normalised frozen features (cosine), top-1 accuracy per k."""
    from .results import print_result
    from .retrieval import RetrievalConfig, run_retrieval
    cfg = RetrievalConfig(ks=tuple(ks) or (1, 10, 20), temperature=temperature,
                          query_chunk=query_chunk, gallery_chunk=gallery_chunk,
                          features=feature_config(kw))
    target = open_target(run, encoder, data, benchmark)
    show_config(cfg)
    record, path = run_protocol(run_retrieval, target, cfg)
    print_result(record, path)
