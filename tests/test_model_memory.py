"""Training memory: the SwiGLU gate keeps half the activations for backward with the same
values and gradients."""
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
