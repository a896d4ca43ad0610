"""Training memory: the SwiGLU gate keeps half the activations for backward with the same
values and gradients."""
import pytest
import torch
import torch.nn.functional as F

from slim.model.blocks import SwiGLU


def _saved_bytes(fn):
    seen, total = set(), 0

    def pack(t):
        nonlocal total
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total


def test_lean_swiglu_matches_the_plain_expression_and_keeps_half():
    torch.manual_seed(0)
    m = SwiGLU(32, 64)
    x = torch.randn(4, 50, 32, requires_grad=True)
    w = torch.randn(4, 50, 32)
    lean, lean_bytes = _saved_bytes(lambda: m(x))
    (lean * w).sum().backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in m.parameters()]
    x.grad = None
    m.zero_grad()

    def plain():
        x1, x2 = m.w12(x).chunk(2, dim=-1)
        return m.w3(F.silu(x1) * x2)
    ref, plain_bytes = _saved_bytes(plain)
    (ref * w).sum().backward()
    assert torch.equal(lean, ref)                                   # forward: the same ops
    for g, r in zip(grads, [x.grad] + [p.grad for p in m.parameters()]):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
    tokens, hidden, dim = 200, 64, 32
    # plain: x (D), x12 (2H), silu (H), product (H); lean: x (D), x12 (2H); both + weights
    assert plain_bytes - lean_bytes >= 2 * hidden * tokens * 4
    weights = sum(p.numel() * 4 for p in m.parameters())
    assert lean_bytes <= (dim + 2 * hidden) * tokens * 4 + weights
    with torch.no_grad():                                           # inference: the plain path
        assert torch.equal(m(x), ref.detach())


def _two_scale_batch():
    from test_model_slim import _batch
    batch = _batch(b=4, t=32, tl=16, n_local=2, seed=3)
    g = torch.Generator().manual_seed(4)
    short = batch["global"][:, [1, 0], :8] + 0.05 * torch.randn(4, 2, 8, 25, 3, generator=g)
    mask = torch.rand(4, 2, 25, generator=g) < 0.5
    batch["locals"].append({"x": short, "mask": mask, "anchor": torch.tensor([1, 0])})
    return batch


@pytest.mark.parametrize("padded,chunk", [(False, None), (True, None), (True, 0), (True, 7), (False, 7)])
def test_backward_per_student_pass_gives_the_gradient_of_the_whole_loss(padded, chunk, one_thread):
    """SLiM.forward_backward (the trainer's CPU step) back-propagates the loss one
    student pass at a time: the gradient, the losses and the EMA inputs are those of
    forward_loss + one backward, and no part (one global view's pass, or one local
    scale's) keeps more than ~45 % of the whole graph's saved activations. The same
    whether a view's MFM tokens go through the student's head in one exact-size call
    (chunk 0) or in calls of fixed sizes (chunk 7: a 196-row call, then ~20 7-row ones,
    the last padded; None: the CPU default, here one padded 192-row call)."""
    from slim.model.slim import SLiM, SLiMConfig
    batch = _two_scale_batch()
    if chunk:    # most tokens masked, as in pretraining: a 196-row call, then 7-row ones
        batch["global_mask"] = torch.rand(batch["global_mask"].shape, generator=torch.Generator().manual_seed(6)) < 0.8
        assert int(batch["global_mask"][:, 0].sum()) > 196 + 2 * 7
    if padded:   # the collate's fixed-size token list (padding entries weigh 0)
        from slim.pipeline.collate import add_mfm_index
        from slim.pipeline.config import PipelineConfig
        batch = add_mfm_index(batch, PipelineConfig(global_len=32))
        assert batch["mfm_index"].shape[0] > int(batch["global_mask"].sum())
    whole, split = (SLiM(SLiMConfig.tiny(), generator=torch.Generator().manual_seed(0)) for _ in range(2))
    out, whole_bytes = _saved_bytes(lambda: whole.forward_loss(batch, torch.tensor(0.05)))
    out["loss"].backward()
    got = split.forward_backward(batch, torch.tensor(0.05), mfm_chunk=chunk)
    assert not got["loss"].requires_grad
    for k in ("loss", "mfm", "glcl", "koleo", "glcl_terms", "masked_tokens"):
        torch.testing.assert_close(got[k], out[k].detach(), rtol=1e-6, atol=0, msg=k)
    assert int(got["glcl_terms"]) == 2 + 2 + 2
    n = 0
    for (name, p), q in zip(whole.named_parameters(), split.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            # float32 rounding of sums in another order (many chunks: ~40 per view at 7
            # rows), relative to the tensor's largest gradient
            atol = max(1e-7, 1e-6 * float(p.grad.abs().max()))
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=atol, msg=name)
            n += 1
    assert n > 20 and all(p.grad is None for p in split.teacher.parameters())
    # the parts' graphs, one at a time
    part_bytes = []
    parts = split.loss_parts(batch, torch.tensor(0.05), per_view=True, mfm_chunk=chunk)
    while True:
        try:
            (part, _), nbytes = _saved_bytes(lambda: next(parts))
        except StopIteration:
            break
        part.backward()
        part_bytes.append(nbytes)
    assert len(part_bytes) == 4 and sum(part_bytes) >= 0.9 * whole_bytes
    assert max(part_bytes) < 0.45 * whole_bytes, (part_bytes, whole_bytes)


def test_memory_mb_is_this_process_peak_not_the_parents():
    """memory_mb reads VmHWM: getrusage's ru_maxrss carries the parent's peak across
    exec, so a trainer started by a large process (make demo's slim-eval) reported it."""
    import resource
    import subprocess
    import sys
    from pathlib import Path
    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc (not Linux)")
    big = bytearray(1024 * 2**20)
    big[::4096] = b"\1" * len(big[::4096])                     # 1 GiB resident in this process
    code = ("import resource, torch; from slim.train.metrics import memory_mb; "
            "print(memory_mb(torch.device('cpu')), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    peak, maxrss = map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                             check=True).stdout.split())
    del big
    assert maxrss > 1024                                        # the parent's peak, inherited
    assert 50 < peak < 800                                      # the child's own: python + torch
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 > 1024


def test_batchnorm_head_step_stays_one_graph(one_thread):
    """A head with BatchNorm (cpu-real) normalises over every view of the step, so
    forward_backward must not split the passes: its gradient equals forward_loss's exactly
    (with DINO centering too), and splitting would have changed it."""
    from slim.model.head import HeadConfig
    from slim.model.slim import SLiM, SLiMConfig
    batch = _two_scale_batch()
    tiny = SLiMConfig.tiny()
    cfg = SLiMConfig.tiny(head=HeadConfig(**{**tiny.head.__dict__, "batchnorm": True}), centering="dino")
    models = [SLiM(cfg, generator=torch.Generator().manual_seed(0)) for _ in range(3)]
    out = models[0].forward_loss(batch, torch.tensor(0.05))
    out["loss"].backward()
    got = models[1].forward_backward(batch, torch.tensor(0.05))
    torch.testing.assert_close(got["loss"], out["loss"].detach(), rtol=0, atol=0)
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad)
    split = models[2]
    for part, _ in split.loss_parts(batch, torch.tensor(0.05), per_view=True):
        part.backward()
    assert any(p.grad is not None and not torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6)
               for p, q in zip(models[0].heads.parameters(), split.heads.parameters()))



def _step_shapes(model, batch, chunk):
    """The shapes of every tensor an op makes in model.forward_backward (forward and
    backward, the autograd engine included), as a set."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Shapes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.seen.update(tuple(t.shape) for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
            return out
    model.zero_grad(set_to_none=True)
    with Shapes() as mode:
        model.forward_backward(batch, torch.tensor(0.05), mfm_chunk=chunk)
    return mode.seen


def test_cpu_step_sizes_do_not_depend_on_how_many_tokens_are_masked(one_thread):
    """The eager CPU step allocates the same tensor sizes whatever the number of masked
    tokens of each view (the MFM heads run in fixed-size chunks, the teacher's on the
    listed tokens only): glibc's heap then reuses the chunks a step frees, instead of
    growing by ~10 MB a step (3.2 GB at the end of `make demo` before; docs/internals.md
    "Memory (CPU)"). The exact-size selection (chunk 0) would not."""
    from slim.model.slim import CPU_MFM_CHUNK, SLiM, SLiMConfig, cpu_mfm_chunk
    from slim.pipeline.collate import add_mfm_index
    from slim.pipeline.config import PipelineConfig
    batches = []
    for share in (0.6, 0.9):      # every preset masks at least half a view (mask_ratio 0.5-0.9)
        batch = _two_scale_batch()
        g = torch.Generator().manual_seed(5)
        batch["global_mask"] = torch.rand(batch["global_mask"].shape, generator=g) < share
        batches.append(add_mfm_index(batch, PipelineConfig(global_len=32)))
    per_view = [[int(m[:, v].sum()) for v in range(2)] for m in (b["global_mask"] for b in batches)]
    assert per_view[1][0] > per_view[0][0] + 2 * 7 and per_view[1][1] > per_view[0][1] + 2 * 7
    model = SLiM(SLiMConfig.tiny(), generator=torch.Generator().manual_seed(0))
    fixed = [_step_shapes(model, b, 7) for b in batches]
    assert fixed[0] == fixed[1]
    exact = [_step_shapes(model, b, 0) for b in batches]
    assert exact[0] != exact[1]                       # the guard can fail
    assert CPU_MFM_CHUNK > 0
    # cpu-demo (batch 32, 200 tokens a view, 256 prototypes): 512-row calls; the paper
    # head (65,536 prototypes) at batch 4: one exact call (its scores are mmapped anyway)
    assert cpu_mfm_chunk(32 * 200, 256) == 512 and cpu_mfm_chunk(4 * 200, 65536) == 0
    assert _step_shapes(model, batches[0], None) == _step_shapes(model, batches[1], None)
