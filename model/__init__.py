"""Stage 3, model: encoder, heads, losses and the SLiM meta-architecture. Tensors in,
tensors out: no files, no datasets (io.py reads/writes encoder files only).

rope.py, blocks.py, encoder.py (Encoder, EncoderConfig, encode_sample) | head.py (DINOHead)
| sinkhorn.py, glcl.py, mfm.py, koleo.py (losses) | params.py (optimiser roles) |
slim.py (SLiMConfig, SLiM) | io.py (save_encoder/load_encoder) | flops.py (cost convention)."""
