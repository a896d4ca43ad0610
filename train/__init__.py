"""Stage 4, train: `slim-train pretrain` builds config, loader, model, optimiser and
schedules and runs the loop; checkpoints and encoder export."""
