"""BCEWithLogitsFunction: the seed's positive cost and its hand-written z̄ = ε̄ (σ(z) − y)/N."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

from torch_tanhnet import BCEWithLogitsFunction, bce_with_logits
from torch_tanhnet.audit.reference import cost_reference


def logits_and_labels(N, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = (3 * torch.randn(N, 1, generator=g, dtype=torch.float64)).to(dtype).requires_grad_(True)
    y = torch.rand(N, 1, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True)
    return z, y


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("N", [1, 2, 17])
def test_gradcheck_and_gradgradcheck_float64(N, fast_mode):
    z, y = logits_and_labels(N)
    assert gradcheck(BCEWithLogitsFunction.apply, (z, y), fast_mode=fast_mode)
    assert gradgradcheck(BCEWithLogitsFunction.apply, (z, y), fast_mode=fast_mode)


@pytest.mark.parametrize("N", [1, 8, 100])
def test_value_equals_torch_bce_with_logits(N):
    z, y = logits_and_labels(N)
    torch.testing.assert_close(bce_with_logits(z, y), F.binary_cross_entropy_with_logits(z, y), rtol=1e-14, atol=0)


def test_cost_is_positive_not_the_log_likelihood():
    # the seed's first line (y log σ + (1−y) log(1−σ)) is ≤ 0; the cost implemented is its negative
    z, y = logits_and_labels(10)
    yh = (y > 0.5).double()
    eps = bce_with_logits(z, yh)
    log_likelihood = (yh * torch.log(torch.sigmoid(z)) + (1 - yh) * torch.log(1 - torch.sigmoid(z))).mean()
    assert eps.item() > 0
    torch.testing.assert_close(eps, -log_likelihood, rtol=1e-12, atol=0)


def test_gradient_is_o_minus_y_over_n():
    z, y = logits_and_labels(7)
    gz, gy = torch.autograd.grad(bce_with_logits(z, y), (z, y))
    torch.testing.assert_close(gz, (torch.sigmoid(z) - y) / 7, rtol=1e-14, atol=0)  # z̄ = (o − y)/N
    torch.testing.assert_close(gy, -z / 7, rtol=1e-14, atol=0)  # ȳ = −z/N
    rz, ry = torch.autograd.grad(cost_reference(z, y), (z, y))
    torch.testing.assert_close(gz, rz, rtol=1e-12, atol=0)
    torch.testing.assert_close(gy, ry, rtol=1e-12, atol=0)


def test_upstream_gradient_scales_everything():
    # ε̄ ≠ 1: (3 · loss).backward() gives three times the gradients
    z, y = logits_and_labels(5)
    g1 = torch.autograd.grad(bce_with_logits(z, y), (z, y))
    g3 = torch.autograd.grad(3 * bce_with_logits(z, y), (z, y))
    for a, b in zip(g1, g3):
        torch.testing.assert_close(b, 3 * a, rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [1e4, -1e4, 88.0, -104.0, 1e30, -1e30])
def test_extreme_logits_stay_finite(dtype, value):
    z = torch.tensor([[value], [-value], [0.0]], dtype=dtype, requires_grad=True)
    y = torch.tensor([[1.0], [0.0], [0.5]], dtype=dtype)
    eps = bce_with_logits(z, y)
    (gz,) = torch.autograd.grad(eps, z)
    assert torch.isfinite(eps) and torch.isfinite(gz).all()
    torch.testing.assert_close(eps, F.binary_cross_entropy_with_logits(z, y))


def test_confidently_wrong_logit_costs_its_size():
    # L(z = −1e4, y = 1) = log(1 + e^(1e4)) = 1e4 exactly in floating point, not inf
    z = torch.tensor([[-1e4]], dtype=torch.float32)
    assert bce_with_logits(z, torch.ones_like(z)).item() == pytest.approx(1e4)


def test_soft_labels_allowed():
    z, y = logits_and_labels(9)
    torch.testing.assert_close(bce_with_logits(z, y), F.binary_cross_entropy_with_logits(z, y), rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype,z0", [(torch.float32, 20.0), (torch.float32, 60.0), (torch.float64, 40.0),
                                      (torch.float64, 300.0)])
def test_a_confidently_right_answers_cost_is_kept_on_every_path(dtype, z0):
    """y = 1 at z = z0 ≫ 0 (and y = 0 at −z0): the cost is e^(−z0), as torch's F.binary_cross_entropy_with_logits
    gives it at y = 1 (at y = 0 it reads 0 too). Computed as max(z, 0) + log1p(e^(−|z|)) − y z, it was lost to
    z's rounding and read 0 on every path. U = 0, W = 0 and c = ±z0 make z = ±z0 on every sample; K = 17 networks
    for the lane kernel."""
    from torch_tanhnet.ensemble.function import ensemble_reference_loss
    from torch_tanhnet.kernels import dispatch, torch_ops

    K, N = 17, 40
    X = torch.randn(N, 2, dtype=torch.float64).to(dtype)
    want = torch.tensor(math.log1p(math.exp(-z0)), dtype=torch.float64)  # L at z = z0, y = 1 or z = −z0, y = 0
    for s in (1.0, -1.0):
        U, b, W = torch.zeros(3, 2, dtype=dtype), torch.zeros(3, dtype=dtype), torch.zeros(1, 3, dtype=dtype)
        c = torch.full((1,), s * z0, dtype=dtype)  # z = c on every sample
        yy = torch.full((N, 1), float(s > 0), dtype=dtype)
        z = torch.full((N, 1), s * z0, dtype=dtype)
        got = {"BCEWithLogitsFunction": BCEWithLogitsFunction.apply(z, yy),
               "torch_ops.cost": torch_ops.cost(z, yy),
               "torch_ops.loss_and_gradients": torch_ops.loss_and_gradients(X, U, b, W, c, yy, False)[0]}
        Uk, bk, Wk, ck = (t.expand(K, *t.shape).contiguous() for t in (U, b, W, c))
        got["ensemble_reference_loss"] = ensemble_reference_loss(X, Uk, bk, Wk, ck, yy)
        got["torch_ops.ensemble"] = torch_ops.ensemble_loss_and_gradients(X, Uk, bk, Wk, ck, yy, False)[0]
        got["torch_ops.ensemble_evaluate"] = torch_ops.ensemble_evaluate(X, Uk, bk, Wk, ck, yy, N)[:, 0] / N
        lib = dispatch.c_kernels(dtype)
        if lib is not None:
            got["C cost"] = lib.cost(z, yy)
            got["C fused"] = lib.loss_and_gradients(X, U, b, W, c, yy, False)[0]
            got["C fused, X̄"] = lib.loss_and_gradients(X, U, b, W, c, yy, True)[0]
            got["C ensemble"] = lib.ensemble_loss_and_gradients(X, Uk, bk, Wk, ck, yy, False, lanes=False)[0]
            if dtype == torch.float32:
                got["C lanes"] = lib.ensemble_loss_and_gradients(X, Uk, bk, Wk, ck, yy, False, lanes=True)[0]
            got["C ensemble_evaluate"] = lib.ensemble_evaluate(X, Uk, bk, Wk, ck, yy, N)[:, 0] / N
        rtol = 1e-5 if dtype == torch.float32 else 1e-12
        wrong = {k: v.detach().double().flatten().tolist() for k, v in got.items()
                 if not torch.allclose(v.detach().double(), want.expand_as(v), rtol=rtol, atol=0)}
        assert wrong == {}, (s, want.item(), wrong)
