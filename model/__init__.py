"""Stage 3, model: encoder, heads, losses and the SLiM meta-architecture. Tensors in,
tensors out: no files, no datasets."""
