"""The sweep's batched metrics: the C kernel, its torch-ops twin and train.py's per-network evaluation agree."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from torch_tanhnet.ensemble import TanhNetEnsemble
from torch_tanhnet.kernels import torch_ops
from torch_tanhnet.kernels.dispatch import c_kernels
from torch_tanhnet.sweep.metrics import METRICS, measure
from torch_tanhnet.training.metrics import evaluate
from torch_tanhnet.training.world import World

needs_c = pytest.mark.skipif(c_kernels(torch.float64) is None, reason="the C kernels could not be built here")


def problem(K, N, D, H, dtype, seed, shared=False, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn((N, D) if shared else (K, N, D), generator=g, dtype=torch.float64).to(dtype)
    y = (torch.rand((N, 1) if shared else (K, N, 1), generator=g) > 0.5).to(dtype)
    params = [scale * torch.randn(s, generator=g, dtype=torch.float64).to(dtype)
              for s in ((K, H, D), (K, H), (K, 1, H), (K, 1))]
    return X, y, params


@needs_c
@given(K=st.integers(1, 9), N=st.integers(2, 600), D=st.integers(1, 4), H=st.sampled_from([1, 2, 3, 5]),
       split=st.floats(0.05, 0.95), shared=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]),
       seed=st.integers(0, 2**16), scale=st.sampled_from([0.5, 1.0, 8.0]))
def test_the_c_kernel_equals_torch_ops(K, N, D, H, split, shared, dtype, seed, scale):
    # any shape (the seed's D = 2, H = 3 has its own loop), a shared or per-network X, saturating weights
    X, y, (U, b, W, c) = problem(K, N, D, H, dtype, seed, shared, scale)
    n_first = min(max(1, round(N * split)), N - 1)
    got = c_kernels(dtype).ensemble_evaluate(X, U, b, W, c, y, n_first)
    want = torch_ops.ensemble_evaluate(X, U, b, W, c, y, n_first)
    tol = 1e-9 if dtype == torch.float64 else 2e-3
    torch.testing.assert_close(got[:, ::2], want[:, ::2], rtol=tol, atol=tol)  # Σ L, summed in other orders
    # right answers are counts; float32 logits near 0 may land on either side in the two orders of summation
    assert (got[:, 1::2] - want[:, 1::2]).abs().max() <= (0 if dtype == torch.float64 else 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("H", [3, 5])
def test_measure_equals_train_py_evaluation_of_each_network(dtype, H):
    # loss/train, accuracy/train, loss/test, accuracy/test as training.metrics.evaluate finds them, network by network
    K, n_train, n_test = 4, 70, 30
    X, y, _ = problem(K, n_train + n_test, 2, H, dtype, 1)
    model = TanhNetEnsemble(K, 2, H, dtype=dtype, seeds=[1, 2, 3, 4])
    got = measure(model, X, y, n_train)
    assert got.dtype == torch.float64 and got.shape == (K, 4)
    for k in range(K):
        net = model[k]
        tr = evaluate(net, X[k, :n_train], y[k, :n_train], World())
        te = evaluate(net, X[k, n_train:], y[k, n_train:], World())
        want = torch.stack([tr[0] / tr[2], tr[1] / tr[2], te[0] / te[2], te[1] / te[2]])
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(got[k], want, rtol=tol, atol=tol, msg=lambda m: f"network {k}: {m} {METRICS}")


def test_measure_runs_the_torch_ops_where_there_is_no_c_kernel(monkeypatch):
    from torch_tanhnet.kernels import dispatch

    monkeypatch.setattr(dispatch, "c_kernels", lambda dtype: None)
    X, y, _ = problem(3, 50, 2, 3, torch.float64, 5)
    model = TanhNetEnsemble(3, 2, 3, dtype=torch.float64, seeds=[0, 1, 2])
    assert dispatch.ensemble_evaluate_implementation(X) is torch_ops
    got = measure(model, X, y, 40)
    want = torch_ops.ensemble_evaluate(X, model.U.detach(), model.b.detach(), model.W.detach(), model.c.detach(), y, 40)
    torch.testing.assert_close(got, want / torch.tensor([40, 40, 10, 10], dtype=torch.float64))


@needs_c
def test_a_network_with_nan_weights_gives_nan_loss_and_leaves_the_others_alone():
    X, y, (U, b, W, c) = problem(3, 40, 2, 3, torch.float64, 7)
    U[1, 0, 0] = float("nan")
    got = c_kernels(torch.float64).ensemble_evaluate(X, U, b, W, c, y, 30)
    assert torch.isnan(got[1, 0]) and torch.isnan(got[1, 2])
    assert torch.isfinite(got[[0, 2]]).all()
