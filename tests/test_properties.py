"""Property-based: over shapes and values, the hand-written backward equals autograd on plain ops."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from torch_tanhnet import bce_with_logits, tanhnet
from torch_tanhnet.audit.reference import loss_reference

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


@st.composite
def seed_problems(draw):
    """The seed's 2-3-1 network in training: X needs no gradient; N across partial and whole blocks."""
    N = draw(st.integers(1, 700))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    g = torch.Generator().manual_seed(seed)
    X = scale * torch.randn(N, 2, generator=g, dtype=torch.float64)
    params = [scale * torch.randn(s, generator=g, dtype=torch.float64) for s in [(3, 2), (3,), (1, 3), (1,)]]
    y = torch.rand(N, 1, generator=g, dtype=torch.float64)
    return X, params, y


@given(seed_problems())
def test_training_path_of_the_seed_network_equals_the_reference(problem):
    from torch_tanhnet import tanhnet_loss

    X, params, y = problem
    params = [p.requires_grad_(True) for p in params]
    eps = tanhnet_loss(X, *params, y)
    ref = loss_reference(X, *params, y)
    torch.testing.assert_close(eps, ref, rtol=1e-12, atol=1e-12)
    for a, r in zip(torch.autograd.grad(eps, params), torch.autograd.grad(ref, params)):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


@given(problems())
def test_torch_ops_schedule_equals_the_reference(problem):
    # the fast Functions on torch ops, without the C kernels: what CUDA and kernel-less CPUs run
    from torch_tanhnet.kernels import torch_ops
    from torch_tanhnet.kernels.functions import FastBCEWithLogitsFunction, FastTanhNetFunction, FusedLossFunction

    *inputs, y = problem
    inputs = [t.requires_grad_(True) for t in inputs]
    ref = loss_reference(*inputs, y)
    want = torch.autograd.grad(ref, inputs)
    for eps in (FastBCEWithLogitsFunction.apply(torch_ops, FastTanhNetFunction.apply(torch_ops, *inputs)[0], y),
                FusedLossFunction.apply(torch_ops, *inputs, y)):
        torch.testing.assert_close(eps, ref, rtol=1e-12, atol=1e-12)
        for a, r in zip(torch.autograd.grad(eps, inputs), want):
            torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
