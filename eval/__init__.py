"""Stage 5, eval: every downstream protocol (retrieval, linear, semi, finetune,
transfer, features, flops, report). Nothing imports eval."""
