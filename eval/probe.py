"""Linear evaluation on frozen, cached features (PROTOCOLS.md): BatchNorm without affine
parameters + one linear layer, SGD momentum 0.9, lr = base_lr x batch / 256, cosine per
step. A grid of learning rates is trained in one pass over the data: the BatchNorm has
no parameters, so one shared normalisation feeds one head per learning rate."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ProbeResult:
    """The head chosen by selection and how it was chosen."""
    lr: float                     # base lr (before the batch / 256 scaling)
    epoch: int                    # 1-based epoch whose weights were selected
    select_accuracy: float        # accuracy % on the selection split at that point
    curves: dict                  # {base lr: [selection accuracy % per epoch]}
    model: nn.Module              # BatchNorm + Linear, eval mode, on CPU


class _Probe(nn.Module):
    def __init__(self, dim: int, num_classes: int, n_heads: int, generator: torch.Generator):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, affine=False)
        self.heads = nn.ModuleList(nn.Linear(dim, num_classes) for _ in range(n_heads))
        for h in self.heads:  # the usual probe init: small weights, zero bias
            nn.init.normal_(h.weight, std=0.01, generator=generator)
            nn.init.zeros_(h.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, F] -> logits [H, B, C] (one slice per head)."""
        z = self.bn(x)
        return torch.stack([h(z) for h in self.heads])


def _accuracy(model: _Probe, x: torch.Tensor, y: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    """Accuracy % per head, [H]."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            pred = model(x[i:i + batch]).argmax(-1)                   # [H, b]
            correct = correct + (pred == y[i:i + batch]).sum(dim=1)
    return 100.0 * correct.float() / max(1, x.shape[0])


def single_head(model: _Probe, head: int) -> nn.Module:
    """BatchNorm + one of the heads as a plain [B, F] -> [B, C] module."""
    return nn.Sequential(copy.deepcopy(model.bn), copy.deepcopy(model.heads[head])).eval()


def train_probe(train_x: torch.Tensor, train_y: torch.Tensor, sel_x: torch.Tensor,
                sel_y: torch.Tensor, num_classes: int, *, lrs=(0.1,), epochs: int = 100,
                batch_size: int = 256, momentum: float = 0.9, weight_decay: float = 0.0,
                generator: torch.Generator, keep_last: bool = False) -> ProbeResult:
    """Train BN + linear heads (one per base lr) on (train_x [N, F], train_y int [N]);
    after every epoch measure accuracy on the selection split (sel_x [S, F], sel_y [S])
    and keep the (lr, epoch) with the best one, or (keep_last, one lr only) the last
    epoch's head whatever its accuracy (nothing is selected on sel then). Tensors may live
    on any device; the returned model is on CPU. `generator` (CPU) owns the init and the
    shuffling order. Raises ValueError for keep_last with several lrs.
    """
    if keep_last and len(lrs) != 1:
        raise ValueError(f"keep_last needs one learning rate, got {len(lrs)}")
    device = train_x.device
    train_x, sel_x = train_x.float(), sel_x.float().to(device)
    train_y, sel_y = train_y.long().to(device), sel_y.long().to(device)
    lrs = [float(lr) for lr in lrs]
    model = _Probe(train_x.shape[1], num_classes, len(lrs), generator).to(device)
    scale = batch_size / 256
    opt = torch.optim.SGD([{"params": h.parameters(), "lr": lr * scale, "base": lr * scale}
                           for h, lr in zip(model.heads, lrs)],
                          momentum=momentum, weight_decay=weight_decay)
    n = train_x.shape[0]
    # drop_last only when it keeps at least one batch: BatchNorm needs batches > 1.
    steps_per_epoch = max(1, n // batch_size) if n >= batch_size else 1
    total = epochs * steps_per_epoch
    loss_fn = nn.CrossEntropyLoss()
    curves = {lr: [] for lr in lrs}
    best = (-1.0, 0, 1, None)  # (acc, head, epoch, state)
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            f = 0.5 * (1 + math.cos(math.pi * step / total))
            for g in opt.param_groups:
                g["lr"] = g["base"] * f
            logits = model(train_x[idx])                               # [H, b, C]
            # Sum over heads: each head's gradient depends only on its own loss.
            loss = sum(loss_fn(lg, train_y[idx]) for lg in logits)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        acc = _accuracy(model, sel_x, sel_y).tolist()
        for h, lr in enumerate(lrs):
            curves[lr].append(acc[h])
        h = max(range(len(lrs)), key=lambda j: acc[j])
        if keep_last and epoch == epochs:
            best = (acc[0], 0, epoch, single_head(model, 0).cpu())
        elif not keep_last and acc[h] > best[0]:
            best = (acc[h], h, epoch, single_head(model, h).cpu())
    acc, h, epoch, head = best
    return ProbeResult(lr=lrs[h], epoch=epoch, select_accuracy=acc, curves=curves, model=head)


def probe_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy % of a [B, F] -> [B, C] model on (x [N, F], y int [N]), on CPU."""
    model = model.eval()
    with torch.no_grad():
        pred = model(x.float().cpu()).argmax(-1)
    return 100.0 * (pred == y.long().cpu()).float().mean().item()
