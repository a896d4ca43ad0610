"""What every `slim-train pretrain` config key means, in a sentence, with its source (the
paper's appendix, docs/DESIGN.md decision, or docs/PROTOCOLS.md "Pretraining", which
holds the released recipe). Printed by `--print-config --comments` and written into the
example files under `configs/`."""
from __future__ import annotations

P = "PROTOCOLS.md Pretraining"

KEY_DOCS: dict[str, str] = {
    # model.encoder: the ViT that is kept after pretraining
    "model.encoder.num_joints": "Joints per skeleton (25: Kinect v2 / NTU layout). Must match the data.",
    "model.encoder.in_chans": "Values per joint (3: x, y, z in metres).",
    "model.encoder.patch_t": "Frames per token (P_T). With 64-frame views: 8 temporal patches. "
                             "Must equal pipeline.patch_t (" + P + ").",
    "model.encoder.patch_j": "Joints per token (P_J = 1: one token per joint and time patch).",
    "model.encoder.dim": "Token width D (paper 256).",
    "model.encoder.depth": "Transformer blocks (paper 8).",
    "model.encoder.heads": "Attention heads (paper 8; head_dim = dim / heads).",
    "model.encoder.registers": "Register tokens besides cls (paper 4): scratch space for attention.",
    "model.encoder.ffn": "Feed-forward: swiglu (released, hidden 688) or mlp (GELU 4x, plain ViT); "
                         "same cost (DESIGN.md decision 3).",
    "model.encoder.mlp_ratio": "Feed-forward width over dim (4.0; swiglu uses 2/3 of it, rounded).",
    "model.encoder.qkv_bias": "Bias in the attention's q, k, v projection.",
    "model.encoder.pos": "Temporal position: rope (rotary, by temporal patch index; DESIGN.md decision 2) "
                         "or absolute (a learned table, MAMP-like).",
    "model.encoder.rope_base": "RoPE frequency base (10000).",
    "model.encoder.max_frames": "Longest input for pos = absolute (frames); unused with rope.",
    "model.encoder.mask_before_joint_embed": "The mask token replaces the patch embedding before the joint "
                                             "embedding is added, so masked tokens keep their joint identity "
                                             "(DESIGN.md decision 1).",
    "model.encoder.drop_path_rate": "Stochastic depth; 0 in pretraining (fine-tuning sets its own).",
    "model.encoder.ln_eps": "LayerNorm epsilon.",
    "model.encoder.root_relative": "Input coordinates: false = as ingested (every joint carries the body's "
                                   "trajectory); true = joints relative to their frame's root, the root keeping "
                                   "the trajectory (pose and trajectory in separate tokens; issue 13).",
    "model.encoder.root_joint": "The joint root_relative subtracts (0: the tree root of ntu25 and kinect_v1_20).",
    # model.head: the DINO projection heads (one for GLCL, one for MFM)
    "model.head.hidden": "Head MLP hidden width (paper 2048).",
    "model.head.bottleneck": "Head output before the prototypes, L2-normalised (paper 256).",
    "model.head.prototypes": "K, prototypes of the weight-normalised last layer (paper 65,536).",
    "model.head.layers": "Linear layers of the head MLP (3).",
    "model.head.batchnorm": "BatchNorm after each hidden layer of the head MLP (DINO's use_bn; the paper: "
                            "none). Keeps a small-batch head from collapsing to one output (issue 13).",
    # model: the objective
    "model.student_temp": "Softmax temperature of the student's prototype scores (0.1).",
    "model.mfm_weight": "Weight of masked feature modeling (MFM: teacher vs student patch tokens on "
                        "masked tokens); 0 switches the branch off (ablation). " + P + ".",
    "model.glcl_weight": "Weight of global-local contrastive learning (GLCL: teacher cls of one global "
                         "view vs student cls of the other and of its local views); 0 = off.",
    "model.koleo_weight": "Weight of the KoLeo spread regulariser on the student cls token (0.1).",
    "model.sinkhorn_iterations": "Sinkhorn-Knopp iterations centring the teacher's scores (3).",
    "model.centering": "Teacher targets: sinkhorn (Sinkhorn-Knopp equipartition per batch, the paper) or dino "
                       "(running-mean centre, DINO): for batches far smaller than the prototype count.",
    "model.center_momentum": "EMA momentum of the dino centre (0.9, DINO).",
    "model.patch_embed_lr_mult": "lr multiplier of the patch embedding (0.2, released recipe).",
    # pipeline: views, augmentations, masking
    "pipeline.global_len": "Frames of each of the two global views (64; paper Appendix B).",
    "pipeline.global_ratio": "A global view covers this fraction range of the valid frames, "
                             "resampled to global_len (Appendix B: 50-100 %).",
    "pipeline.local_lens": "Frames of the local views, one entry per scale (32, 16, 8; Appendix B).",
    "pipeline.local_counts": "Local crops per scale and per anchor global view (2, 2, 2; released "
                             "code 1, 2, 1; DESIGN.md decision 4).",
    "pipeline.local_ratios": "Per scale, the fraction range of the anchor's interval a local crop covers.",
    "pipeline.augment": "Skeleton-aware augmentations on (paper Appendix D); false = ablation.",
    "pipeline.p_rotate": "Probability a view is rotated (0.5; DESIGN.md decision 6).",
    "pipeline.p_mirror": "Probability a view is mirrored: left/right joints swapped and x negated.",
    "pipeline.p_scale": "Probability a view's bone lengths are scaled per body group.",
    "pipeline.rot_y_deg": "Rotation about the vertical axis: uniform +- this many degrees (180).",
    "pipeline.rot_xz_deg": "Rotation about the x and z axes: uniform +- this many degrees (30).",
    "pipeline.scale_range": "Bone-length scale range per body group (0.85-1.15).",
    "pipeline.masking": "tube: semantic tube masking (paper Appendix C, Algorithm 1: masks whole body "
                        "parts over runs of time patches); random: independent tokens (the ablation).",
    "pipeline.mask_ratio": "Share of a view's tokens masked, drawn uniformly from this range (0.5-0.9).",
    "pipeline.mask_local_p": "Probability that a local view is masked for the student (0.5); global "
                             "views are always masked (DESIGN.md decision 5).",
    "pipeline.a_min": "A_min, the smallest tube area (time patches x joints) on the global grid (8); "
                      "local grids scale it with their temporal patches: 4, 2, 1 (Appendix C).",
    "pipeline.a_max_frac": "A_max as a fraction of a grid's tokens (0.5): the largest tube area.",
    "pipeline.patch_t": "Frames per token as the masks see it; must equal model.encoder.patch_t.",
    "pipeline.test_crop": "Evaluation transform: centre crop of this fraction of the valid frames (0.95).",
    # optim
    "optim.base_lr": "AdamW base learning rate (2e-4), scaled by lr_scaling to the peak lr.",
    "optim.lr_ref_batch": "Batch the base lr refers to (1024).",
    "optim.lr_scaling": "Peak lr = base_lr x sqrt(global_batch / lr_ref_batch) (sqrt, the paper), "
                        "x the ratio (linear), or base_lr as is (none).",
    "optim.min_lr": "Floor of the cosine lr schedule (1e-6).",
    "optim.beta1": "AdamW beta1 (0.9).",
    "optim.beta2": "AdamW beta2 (0.999).",
    "optim.weight_decay": "Weight decay at the start, cosine to weight_decay_end (0.04; none on biases "
                          "and norms).",
    "optim.weight_decay_end": "Weight decay at the end (0.2).",
    "optim.clip_grad": "Max gradient norm per module (student encoder, each head); 0 = no clipping (3.0).",
    # schedule
    "schedule.epochs": "Run length in epochs (150). Extending a run: --extend with a larger value.",
    "schedule.epoch_steps": "Steps per epoch (1,250 in the released recipe at global batch 768); 0 = one "
                            "pass over the training split.",
    "schedule.warmup_epochs": "Linear lr warm-up from 0, in epochs (20).",
    "schedule.momentum_teacher": "Teacher EMA momentum at the start, cosine to momentum_teacher_end (0.994).",
    "schedule.momentum_teacher_end": "Teacher EMA momentum at the end (1.0).",
    "schedule.teacher_temp_start": "Teacher softmax temperature at the start (0.04) ...",
    "schedule.teacher_temp": "... rising linearly to this (0.07) over teacher_temp_warmup_epochs.",
    "schedule.teacher_temp_warmup_epochs": "Epochs of the teacher temperature warm-up (30).",
    "schedule.freeze_last_layer_epochs": "Epochs during which the heads' prototype layers get no "
                                         "gradient (1), as DINO does.",
    # data
    "data.global_batch": "Samples per step summed over all processes (768); must divide by the number "
                         "of processes and fit in the training split.",
    "data.num_workers": "DataLoader worker processes per process (8); may change on resume.",
    "data.prefetch": "batches each DataLoader worker prepares ahead (prefetch_factor); may change on resume.",
    "data.source": "h5: samples.h5 (a step's batch depends only on the step: exact resume); shards: "
                   "the WebDataset tar shards.",
    "data.shards": "Where source 'shards' reads: '' = <data>/shards/<benchmark>_train; a folder; a brace "
                   "pattern of URLs (https://host/ntu60/xsub_train/train-{000000..000123}.tar); pipe:COMMAND "
                   "with such a pattern; or a prefix s3://, gs://, https:// holding the split's shards and "
                   "shards.json (s3/gs: pip install 'slim-skeleton[remote]'). Every shard is checked against "
                   "shards.json; may change on resume.",
    "data.shard_retries": "Retries of a shard fetch that fails (reset, truncated, checksum mismatch) "
                          "before the shard is skipped (3); every retry and skip is printed and counted "
                          "in metrics.jsonl.",
    "data.shard_retry_wait": "Seconds before the first retry of a shard; doubled for each next one, "
                             "at most 30 (1.0).",
    "data.max_failed_shards": "Share (0..1) of a reader's (rank x worker) shards that may be skipped; one "
                              "more stops the run with an error (0.05).",
    # checkpoint
    "checkpoint.every_steps": "Steps between checkpoints (also one at the end and on SIGTERM / Ctrl-C).",
    "checkpoint.keep_last": "Checkpoints kept; older ones are deleted.",
    # run
    "run.seed": "Seed of the model init and the batches.",
    "run.device": "auto (a GPU when torch sees one), cpu or cuda.",
    "run.amp": "bf16 autocast on GPU, or none; CPU runs in float32 unless run.amp_cpu is set.",
    "run.amp_cpu": "also apply run.amp's bf16 autocast on a CPU (tests the GPU policy; off by default).",
    "run.compile": "torch.compile the model (GPU; may change on resume).",
    "run.log_every": "Steps between metrics.jsonl lines (and plain log lines).",
    "run.tensorboard": "Mirror metrics to TensorBoard when it is installed (its state is printed).",
    "run.threads": "torch CPU threads per process; 0 = torch's default.",
}

SECTION_DOCS: dict[str, str] = {
    "model": "The objective: loss weights and temperatures (" + P + ").",
    "model.encoder": "The ViT encoder kept after pretraining (" + P + ").",
    "model.head": "The DINO projection heads, one for GLCL and one for MFM (" + P + ").",
    "pipeline": "Views, augmentations and masks made from each sample (paper Appendices B-D).",
    "optim": "AdamW and its learning rate (" + P + ").",
    "schedule": "Run length and the per-step schedules (" + P + ").",
    "data": "Batches.",
    "checkpoint": "Checkpoints (complete and atomic; the same command resumes).",
    "run": "Runtime: device, precision, logging.",
}


def missing_docs(keys) -> list[str]:
    """Config keys without an explanation (a test keeps this empty)."""
    return sorted(k for k in keys if k not in KEY_DOCS)
