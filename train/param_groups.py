"""AdamW parameter groups from the model's own parameter roles
(`SLiM.param_groups_spec()`: weight decay or not, lr multiplier, heads' last layer; the
rules live in `slim.model.params`). Parameters with the same roles share a group; the
loop writes each step's lr and weight decay into the groups, times their multipliers."""
from __future__ import annotations


def build_param_groups(spec: list[dict]) -> list[dict]:
    """spec: [{"name", "param", "weight_decay" (bool), "lr_mult", "last_layer"}, ...] ->
    groups for torch.optim.AdamW, each with `wd_mult` (0 or 1), `lr_mult`, `last_layer`
    and `names`, in a deterministic order.

    Raises ValueError when no patch-embedding (lr_mult != 1) or no last-layer parameter
    is present: a renamed module must not silently lose its lr multiplier or its
    first-epoch freeze."""
    groups: dict[tuple, dict] = {}
    for item in spec:
        wd_mult = 1.0 if item["weight_decay"] else 0.0
        key = (wd_mult, float(item["lr_mult"]), bool(item["last_layer"]))
        g = groups.setdefault(key, {"params": [], "names": [], "wd_mult": wd_mult,
                                    "lr_mult": key[1], "last_layer": key[2]})
        g["params"].append(item["param"])
        g["names"].append(item["name"])
    if not any(g["last_layer"] for g in groups.values()):
        raise ValueError("no head last-layer parameter in the model's parameter spec: "
                         "the first-epoch freeze would be lost (check slim.model.params.is_last_layer)")
    return [groups[k] for k in sorted(groups)]


def set_step_values(optimizer, lr: float, wd: float) -> None:
    """Write one step's lr and weight decay into every group, times its multipliers."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g["lr_mult"]
        g["weight_decay"] = wd * g["wd_mult"]


def drop_last_layer_grads(optimizer) -> None:
    """Freeze the heads' last layers for this step: AdamW skips parameters whose grad is
    None (no moment update, no weight decay), as if they were not trained."""
    for g in optimizer.param_groups:
        if g["last_layer"]:
            for p in g["params"]:
                p.grad = None
