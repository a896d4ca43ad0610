"""Stage 2, pipeline: sources, temporal views, skeleton-aware augmentations, semantic
tube masking and collate. CPU only, runs in DataLoader workers."""
