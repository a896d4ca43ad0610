"""Stage 1, ingest: raw NTU RGB+D 60/120, PKU-MMD II and synthetic files -> samples.h5,
manifest.parquet, WebDataset shards and card.json. Knows nothing of the other stages."""
