"""Property-based: over shapes and values, the hand-written backward equals autograd on plain ops."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from torch_tanhnet import bce_with_logits, tanhnet
from torch_tanhnet.reference import loss_reference

finite = st.floats(min_value=-30, max_value=30, allow_nan=False, width=64)


@st.composite
def problems(draw):
    N = draw(st.integers(1, 12))
    D = draw(st.integers(1, 5))
    H = draw(st.integers(1, 6))
    def tensor(*shape):
        n = 1
        for s in shape:
            n *= s
        return torch.tensor(draw(st.lists(finite, min_size=n, max_size=n)), dtype=torch.float64).view(*shape)
    X, U, b, W, c = tensor(N, D), tensor(H, D), tensor(H), tensor(1, H), tensor(1)
    y = torch.tensor(draw(st.lists(st.floats(0, 1), min_size=N, max_size=N)), dtype=torch.float64).view(N, 1)
    return X, U, b, W, c, y


@given(problems())
def test_gradients_equal_autograd(problem):
    *inputs, y = problem
    inputs = [t.requires_grad_(True) for t in inputs]
    eps = bce_with_logits(tanhnet(*inputs), y)
    ref = loss_reference(*inputs, y)
    torch.testing.assert_close(eps, ref, rtol=1e-12, atol=1e-12)
    mine = torch.autograd.grad(eps, inputs)
    want = torch.autograd.grad(ref, inputs)
    for a, r in zip(mine, want):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


@given(problems())
def test_cost_is_finite_and_nonnegative(problem):
    *inputs, y = problem
    z = tanhnet(*inputs)
    eps = bce_with_logits(z * 1e3, y)  # push logits far out: still finite
    assert torch.isfinite(eps) and eps.item() >= 0


@given(problems())
def test_fused_training_path_equals_the_reference(problem):
    from torch_tanhnet import tanhnet_loss

    *inputs, y = problem
    inputs = [t.requires_grad_(True) for t in inputs]
    eps = tanhnet_loss(*inputs, y)
    ref = loss_reference(*inputs, y)
    torch.testing.assert_close(eps, ref, rtol=1e-12, atol=1e-12)
    for a, r in zip(torch.autograd.grad(eps, inputs), torch.autograd.grad(ref, inputs)):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
