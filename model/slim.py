"""SLiM meta-architecture: student encoder + heads trained by back-propagation, EMA
teacher (no gradients, unmasked global views), and the three losses on the pipeline's
pretraining batch (docs/internals.md)."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .encoder import Encoder, EncoderConfig
from .glcl import glcl_loss
from .head import DINOHead, HeadConfig
from .koleo import koleo_loss
from .masked import masked_token_index
from .mfm import mfm_loss
from .params import param_spec
from .centering import centered_probs, update_center
from .sinkhorn import sinkhorn_knopp


@dataclass(frozen=True)
class SLiMConfig:
    """Loss weights 0 switch a branch off entirely (ablations): its head is not built and
    its inputs are not computed (GLCL off also skips the local views)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    student_temp: float = 0.1
    mfm_weight: float = 1.0
    glcl_weight: float = 1.0
    koleo_weight: float = 0.1
    sinkhorn_iterations: int = 3
    #: How the teacher's scores become targets: "sinkhorn" (Sinkhorn-Knopp equipartition
    #: per batch, DINOv2 and the paper) or "dino" (a running-mean centre subtracted
    #: before the softmax, DINO): for batches much smaller than the prototype count, where
    #: equipartition forces near-uniform targets (slim.model.centering).
    centering: str = "sinkhorn"
    #: EMA momentum of the "dino" centre (0.9, DINO).
    center_momentum: float = 0.9
    patch_embed_lr_mult: float = 0.2

    def __post_init__(self):
        if self.centering not in ("sinkhorn", "dino"):
            raise ValueError(f"centering must be 'sinkhorn' or 'dino', got {self.centering!r}")

    @classmethod
    def tiny(cls, **overrides) -> "SLiMConfig":
        return cls(**{"encoder": EncoderConfig.tiny(), "head": HeadConfig.tiny(), **overrides})


#: Rows of the MFM head's later calls in the eager step on a CPU (`SLiM.loss_parts`, per
#: view). A view's masked tokens (a number that changes every step) go through the
#: student's MFM head in calls of fixed sizes: first the largest multiple of this not above
#: half the view's tokens (every preset masks at least half: mask_ratio from 0.5), then
#: calls of this many rows, the last one padded with weight-0 rows. Every step then
#: allocates the same sizes and glibc's heap reuses the blocks a step frees instead of
#: growing by ~10 MB a step (docs/internals.md "Memory (CPU)"). cpu-demo: 3,072 + 3 x 512
#: rows for a view's ~4,500 masked tokens (~6 % padding rows, 4 calls instead of 1).
#: Smaller batches use smaller calls, wide heads one exact call (`cpu_mfm_chunk`).
CPU_MFM_CHUNK = 512

#: glibc's largest dynamic mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB,
#: mallopt(3)): a block at least this large is always mapped on its own and unmapped when
#: freed, so its size changing from step to step does not fragment the heap.
GLIBC_MMAP_MAX = 32 * 2**20


def cpu_mfm_chunk(view_tokens: int, prototypes: int) -> int:
    """Rows of the later MFM-head calls on a CPU for a view of `view_tokens` tokens (batch
    x tokens per view) and a head of `prototypes` outputs: CPU_MFM_CHUNK, or the largest
    power of two up to an eighth of the view's tokens when that is smaller; 0 (one
    exact-size call) when the head's float32 scores for half the view's tokens already
    reach GLIBC_MMAP_MAX (the paper preset: 65,536 prototypes; measured at batch 4 on a
    CPU, fixed-size calls raised its peak: 2,843 against 2,437 MB in step 1)."""
    if (int(view_tokens) // 2) * int(prototypes) * 4 >= GLIBC_MMAP_MAX:
        return 0
    return min(CPU_MFM_CHUNK, 1 << max(0, (int(view_tokens) // 8).bit_length() - 1))


def _list_chunks(keep: torch.Tensor, chunk: int, first: int = 0):
    """Fixed-size chunks over the kept entries of a token list: yields (positions int64
    [size] into the list, ok bool [size]) covering, in list order, the positions where
    `keep` (bool [U], U >= 1) is True: a first chunk of `first` rows when first > 0, then
    chunks of `chunk` rows. `ok` is False on the padding that fills the last chunk (its
    position repeats a kept one). At least one chunk, all padding when nothing is kept.
    Reads one count back to the host (eager only)."""
    n = int(keep.sum())
    order = torch.argsort((~keep).to(torch.uint8), stable=True)         # kept positions first
    steps = torch.arange(max(first, chunk), device=keep.device)
    start, size = 0, first if first > 0 else chunk
    while start == 0 or start < n:
        p = start + steps[:size]
        yield order.index_select(0, p.clamp(max=keep.shape[0] - 1)), p < n
        start, size = start + size, chunk


def _views_first(x: torch.Tensor) -> torch.Tensor:
    """[B, n, ...] -> [n * B, ...], view-major (row v * B + b), so each view is a contiguous block."""
    return x.transpose(0, 1).flatten(0, 1)


class SLiM(nn.Module):
    """`forward_loss(batch, teacher_temp)` -> {"loss", "mfm", "glcl", "koleo",
    "glcl_terms", "masked_tokens"} (0-dim tensors; only "loss" carries a graph).
    `forward` is the same call, so the module can be wrapped in DDP."""

    def __init__(self, cfg: SLiMConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.student = Encoder(cfg.encoder, generator)
        heads = {}
        if cfg.glcl_weight > 0:
            heads["glcl"] = DINOHead(cfg.encoder.dim, cfg.head, generator)
        if cfg.mfm_weight > 0:
            heads["mfm"] = DINOHead(cfg.encoder.dim, cfg.head, generator)
        self.heads = nn.ModuleDict(heads)
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)
        self.teacher_heads = copy.deepcopy(self.heads).requires_grad_(False)
        if cfg.centering == "dino":   # only then: sinkhorn checkpoints keep their keys
            for name in heads:
                self.register_buffer(f"center_{name}", torch.zeros(1, cfg.head.prototypes))

    @torch.no_grad()
    def _targets(self, name: str, logits: torch.Tensor, teacher_temp, valid=None) -> torch.Tensor:
        """Teacher targets [N, K] of head `name`'s scores [N, K] (cfg.centering)."""
        cfg = self.cfg
        if cfg.centering == "sinkhorn":
            return sinkhorn_knopp(logits, teacher_temp, cfg.sinkhorn_iterations, valid=valid)
        center = getattr(self, f"center_{name}")
        probs = centered_probs(logits, center, teacher_temp)
        if valid is not None:
            probs = probs * valid[:, None].float()
        if self.training:
            update_center(center, logits, cfg.center_momentum, valid)
        return probs

    # -- optimiser and EMA --------------------------------------------------------------

    def param_groups_spec(self) -> list[dict]:
        """Student trainable parameters (encoder as "student.*", heads as "heads.<name>.*")
        with their optimiser roles: see `slim.model.params` for the rules."""
        named = [(f"student.{n}", p) for n, p in self.student.named_parameters()]
        named += [(f"heads.{n}", p) for n, p in self.heads.named_parameters()]
        return param_spec(named, self.cfg.patch_embed_lr_mult)

    def _pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        s = list(self.student.parameters()) + list(self.heads.parameters())
        t = list(self.teacher.parameters()) + list(self.teacher_heads.parameters())
        return s, t

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher <- m * teacher + (1 - m) * student, over encoder and heads."""
        s, t = self._pairs()
        torch._foreach_mul_(t, momentum)
        torch._foreach_add_(t, [p.detach() for p in s], alpha=1.0 - momentum)

    # -- loss ---------------------------------------------------------------------------

    def _global_views(self, batch: dict) -> tuple[torch.device, int, torch.Tensor, torch.Tensor]:
        """(device, B, global views [2B, T, V, C], their masks bool [2B, N]), view-major, on
        the model's device. Raises ValueError unless the batch holds 2 global views."""
        dev = self.student.cls_token.device
        g = batch["global"].to(dev, non_blocking=True)
        b, n_global = g.shape[:2]
        if n_global != 2:
            raise ValueError(f"batch['global'] must hold 2 global views per sample, got {n_global}")
        return dev, b, _views_first(g), _views_first(batch["global_mask"].to(dev, non_blocking=True))

    @staticmethod
    def _mfm_tokens(batch: dict, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The masked global tokens (flat row index int64 [U], weight float32 [U]) on
        `dev`: the collate's padded "mfm_index"/"mfm_weight", else computed from
        "global_mask" (`slim.model.masked.masked_token_index`; eager only)."""
        index, weight = batch.get("mfm_index"), batch.get("mfm_weight")
        if index is None or weight is None:
            index, weight = masked_token_index(batch["global_mask"])
        return index.to(dev, non_blocking=True), weight.to(dev, non_blocking=True)

    def forward(self, batch: dict, teacher_temp: float | torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_loss(batch, teacher_temp)

    def forward_loss(self, batch: dict, teacher_temp: float | torch.Tensor) -> dict[str, torch.Tensor]:
        """batch: the pipeline's pretraining batch:
        "global" float [B, 2, T, V, C], "global_mask" bool [B, 2, T/P_T * V],
        "locals" [{"x" [B, n_s, T_s, V, C], "mask" bool [B, n_s, T_s/P_T * V], "anchor" int [n_s]}],
        and, from the pipeline's collate, "mfm_index" int64 [U] / "mfm_weight" float32 [U]
        (`slim.model.masked.masked_token_index`: the masked global tokens, padded to a
        fixed bound U). Without them they are computed here from "global_mask" (eager
        only: that size depends on the data).
        teacher_temp: teacher softmax temperature of this step (student's is
        cfg.student_temp); a 0-dim tensor keeps a compiled step from recompiling.

        The student runs once per view length (all views of that length batched), the
        teacher once over the 2B unmasked global views. With the collate's index the step
        has static shapes and no host-device synchronisation (no `.item()`, no boolean
        gather): `torch.compile(fullgraph=True)` takes it whole. The losses, softmaxes,
        Sinkhorn-Knopp and KoLeo run in float32 under autocast.

        This is the reference formulation (one graph for the step; heads applied to all
        views at once, so a head with BatchNorm normalises over every view of the step, as
        DINO's multi-crop). `forward_backward` computes the same gradient with less memory."""
        cfg = self.cfg
        dev, b, gx, gm = self._global_views(batch)
        do_glcl, do_mfm = cfg.glcl_weight > 0, cfg.mfm_weight > 0
        s_g = self.student(gx, gm)
        with torch.no_grad():
            t_g = self.teacher(gx)
        zero = s_g["cls"].new_zeros((), dtype=torch.float32)
        out = {"mfm": zero, "glcl": zero, "koleo": zero,
               "glcl_terms": torch.tensor(0), "masked_tokens": gm.sum()}
        loss = zero

        if do_glcl:
            with torch.no_grad():
                t_logits = self.teacher_heads["glcl"](t_g["cls"])              # [2B, K]
                t_probs = self._targets("glcl", t_logits, teacher_temp).view(2, b, -1)
            cls_list = [s_g["cls"]]                                            # view 0, 1: globals
            # (anchor, student view) per term: the globals target each other, then each
            # local view its anchor (the anchors are data: kept on the device).
            anchors = [torch.tensor([0, 1], device=dev)]
            view = 2
            for scale in batch.get("locals", []):
                x = scale["x"].to(dev, non_blocking=True)
                n_s = x.shape[1]
                if n_s == 0:
                    continue
                m = _views_first(scale["mask"].to(dev, non_blocking=True))
                # An all-False mask leaves the tokens exactly as without a mask.
                cls_list.append(self.student(_views_first(x), m)["cls"])
                anchors.append(scale["anchor"].to(dev, non_blocking=True).to(torch.int64))
                view += n_s
            views = torch.arange(view, device=dev)
            views = torch.where(views < 2, 1 - views, views)                   # 1, 0, 2, 3, ...
            targets = torch.stack([torch.cat(anchors), views], dim=1)         # [terms, 2]
            s_logits = self.heads["glcl"](torch.cat(cls_list)).view(view, b, -1)  # [S, B, K]
            out["glcl"] = glcl_loss(t_probs, s_logits, targets, cfg.student_temp)
            out["glcl_terms"] = torch.tensor(view)
            loss = loss + cfg.glcl_weight * out["glcl"]

        if do_mfm:
            index, weight = self._mfm_tokens(batch, dev)
            sp = s_g["patches"].flatten(0, 2).index_select(0, index)           # [U, D]
            with torch.no_grad():
                tp = t_g["patches"].flatten(0, 2).index_select(0, index)
                t_probs_p = self._targets("mfm", self.teacher_heads["mfm"](tp), teacher_temp,
                                          valid=weight > 0)
            out["mfm"] = mfm_loss(t_probs_p, self.heads["mfm"](sp), weight, cfg.student_temp)
            loss = loss + cfg.mfm_weight * out["mfm"]

        if cfg.koleo_weight > 0:
            # Summed over the two global views, as DINOv2 (each view's batch separately).
            out["koleo"] = sum(koleo_loss(c) for c in s_g["cls"].chunk(2))
            loss = loss + cfg.koleo_weight * out["koleo"]

        res = {k: v.detach() for k, v in out.items()}
        res["loss"] = loss
        return res

    def forward_backward(self, batch: dict, teacher_temp: float | torch.Tensor,
                         autocast: contextlib.AbstractContextManager | None = None,
                         per_view: bool = True, mfm_chunk: int | None = None) -> dict[str, torch.Tensor]:
        """The gradient of `forward_loss(batch, teacher_temp)["loss"]`, accumulated into the
        student's and heads' `.grad` one student pass at a time: the loss is a sum of one
        term per student pass (`loss_parts(per_view=True)`: each global view, then each
        local scale), so back-propagating each part as soon as it is computed gives the
        same gradient (up to float rounding; tests/test_model_memory.py) while only one
        pass's activations are alive at a time (cpu-demo: ~155 MB for a global view's
        pass instead of ~530 MB for the whole step's graph).
        autocast: a (re-enterable) context manager wrapping each forward part, e.g. the
        step's `torch.autocast` (None: none). mfm_chunk: see `loss_parts`. Returns the
        same dict as `forward_loss`,
        every value detached ("loss" included). Eager single-process training only: a
        DDP module expects one backward per forward, and torch.compile takes
        `forward_loss` whole; the per-view split's MFM token selection has a
        data-dependent size."""
        ctx = autocast if autocast is not None else contextlib.nullcontext()
        if self.cfg.head.batchnorm:
            # A BatchNorm head's statistics span every view of the step: splitting the
            # passes would change the loss, so such a step runs as one graph.
            with ctx:
                out = self.forward_loss(batch, teacher_temp)
            out["loss"].backward()
            out["loss"] = out["loss"].detach()
            return out

        def backward_each(parts):
            while True:
                with ctx:
                    try:
                        part, values = next(parts)
                    except StopIteration:
                        return
                if part.requires_grad:    # (a part of weight 0 has no graph)
                    part.backward()
                yield part.detach(), values
        out, parts = self._sum_parts(backward_each(
            self.loss_parts(batch, teacher_temp, per_view=per_view, mfm_chunk=mfm_chunk)))
        total = None
        for part in parts:
            total = part if total is None else total + part
        out["loss"] = total
        return out

    @staticmethod
    def _sum_parts(parts) -> tuple[dict, list]:
        """({name: sum of the parts' values}, [the parts' losses]) of `loss_parts`."""
        out, losses = {}, []
        for part, values in parts:
            losses.append(part)
            for k, v in values.items():
                out[k] = v if k not in out or k in ("glcl_terms", "masked_tokens") else out[k] + v
        return out, losses

    def loss_parts(self, batch: dict, teacher_temp: float | torch.Tensor, per_view: bool = False,
                   mfm_chunk: int | None = None):
        """Yields (loss part with its graph, {name: detached value}) once per student pass:
        the global views (both at once, or each alone when `per_view`), then one per
        local scale. The parts sum to the loss of `forward_loss` and their values to its
        "mfm", "glcl" and "koleo" (the GLCL mean over terms, KoLeo's sum over the global
        views and MFM's weighted sum over tokens are split by view); the first part also
        carries "glcl_terms" and "masked_tokens". The teacher runs first (no gradient),
        so a part's activations can be freed before the next pass.
        per_view selects each view's MFM tokens, a data-dependent number (eager only):
        mfm_chunk > 0 runs the student's MFM head on them in calls of fixed sizes (the
        largest multiple of mfm_chunk up to half the view's tokens, then mfm_chunk rows,
        the last call padded with weight-0 rows; CPU_MFM_CHUNK); 0 selects them with a
        boolean mask for one call of the exact, changing size; None: `cpu_mfm_chunk` on a
        CPU (fixed sizes keep glibc's heap from growing), 0 elsewhere. The loss is the same
        up to float rounding (tests/test_model_memory.py)."""
        cfg = self.cfg
        dev, b, gx, gm = self._global_views(batch)
        do_glcl, do_mfm = cfg.glcl_weight > 0, cfg.mfm_weight > 0
        tokens = gm.shape[1]
        chunk = 0
        if per_view and do_mfm:
            chunk = int(mfm_chunk) if mfm_chunk is not None else (
                cpu_mfm_chunk(b * tokens, cfg.head.prototypes) if dev.type == "cpu" else 0)
        with torch.no_grad():
            t_g = self.teacher(gx)
            if do_glcl:
                t_logits = self.teacher_heads["glcl"](t_g["cls"])              # [2B, K]
                t_probs = self._targets("glcl", t_logits, teacher_temp).view(2, b, -1)
            if do_mfm:
                index, weight = self._mfm_tokens(batch, dev)
                chunk = chunk if index.shape[0] > 0 else 0
                tp = t_g["patches"].flatten(0, 2).index_select(0, index)
                t_probs_p = self._targets("mfm", self.teacher_heads["mfm"](tp), teacher_temp,
                                          valid=weight > 0)
        del t_g
        # GLCL terms: the two globals, then every local view (view 0 targets anchor 1 and
        # view 1 anchor 0; each local view its anchor, data kept on the device).
        scales = [s for s in batch.get("locals", []) if s["x"].shape[1] > 0] if do_glcl else []
        n_terms = 2 + sum(s["x"].shape[1] for s in scales)
        counts = {"glcl_terms": torch.tensor(n_terms if do_glcl else 0), "masked_tokens": gm.sum()}

        for first, n_v in ((0, 1), (1, 1)) if per_view else ((0, 2),):
            rows = slice(first * b, (first + n_v) * b)
            s_g = self.student(gx[rows], gm[rows])
            zero = s_g["cls"].new_zeros((), dtype=torch.float32)
            values = {"mfm": zero, "glcl": zero, "koleo": zero, **counts}
            counts = {}
            loss = zero
            if do_glcl:
                s_logits = self.heads["glcl"](s_g["cls"]).view(n_v, b, -1)   # [n_v, B, K]
                views = torch.arange(n_v, device=dev)
                targets = torch.stack([1 - first - views, views], dim=1)      # anchor = the other view
                glcl = glcl_loss(t_probs, s_logits, targets, cfg.student_temp) * (n_v / n_terms)
                values["glcl"] = glcl.detach()
                loss = loss + cfg.glcl_weight * glcl
            if do_mfm:
                sp = s_g["patches"].flatten(0, 2)                             # [n_v * B * N, D]
                if per_view:                          # this view's tokens: flat rows of its block
                    lo = first * b * tokens
                    keep = (index >= lo) & (index < lo + b * tokens) & (weight > 0)
                    if chunk:
                        mfm = zero
                        half = chunk * (b * tokens // (2 * chunk))    # the first call's rows
                        for pos, ok in _list_chunks(keep, chunk, half):
                            rows = torch.where(ok, index.index_select(0, pos) - lo, 0)
                            mfm = mfm + mfm_loss(t_probs_p.index_select(0, pos),
                                                 self.heads["mfm"](sp.index_select(0, rows)),
                                                 torch.where(ok, weight.index_select(0, pos), 0.0),
                                                 cfg.student_temp)
                    else:
                        mfm = mfm_loss(t_probs_p[keep], self.heads["mfm"](sp.index_select(0, index[keep] - lo)),
                                       weight[keep], cfg.student_temp)
                else:
                    mfm = mfm_loss(t_probs_p, self.heads["mfm"](sp.index_select(0, index)), weight,
                                   cfg.student_temp)
                values["mfm"] = mfm.detach()
                loss = loss + cfg.mfm_weight * mfm
            if cfg.koleo_weight > 0:
                # Summed over the two global views, as DINOv2 (each view's batch separately).
                koleo = sum(koleo_loss(c) for c in s_g["cls"].chunk(n_v))
                values["koleo"] = koleo.detach()
                loss = loss + cfg.koleo_weight * koleo
            del s_g
            yield loss, values

        for scale in scales:
            x = scale["x"].to(dev, non_blocking=True)
            n_s = x.shape[1]
            m = _views_first(scale["mask"].to(dev, non_blocking=True))
            # An all-False mask leaves the tokens exactly as without a mask.
            cls = self.student(_views_first(x), m)["cls"]
            s_logits = self.heads["glcl"](cls).view(n_s, b, -1)               # [n_s, B, K]
            anchors = scale["anchor"].to(dev, non_blocking=True).to(torch.int64)
            targets = torch.stack([anchors, torch.arange(n_s, device=dev)], dim=1)
            glcl = glcl_loss(t_probs, s_logits, targets, cfg.student_temp) * (n_s / n_terms)
            yield cfg.glcl_weight * glcl, {"glcl": glcl.detach()}
