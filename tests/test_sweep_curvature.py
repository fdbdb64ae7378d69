"""Where each run of a sweep ended: its gradient's norm and its Hessian's extreme eigenvalues, batched over the
ensemble, against torch_tanhnet.landscape network by network, and as results.csv's columns."""

import csv

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_tanhnet.ensemble import TanhNetEnsemble
from torch_tanhnet.ensemble.hessian import ensemble_gradient, ensemble_gradient_and_hessian
from torch_tanhnet.landscape import hessian, hessian_eigenvalues
from torch_tanhnet.sweep import metrics
from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.metrics import CURVATURE, curvature
from torch_tanhnet.sweep.runner import sweep
from torch_tanhnet.sweep.state import network
from torch_tanhnet.training.metrics import MAX_HESSIAN_PARAMETERS
from torch_tanhnet.training.setup import load_split


def problem(K, N, D, H, seed, shared=False, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn((N, D) if shared else (K, N, D), generator=g, dtype=torch.float64).to(dtype)
    y = (torch.rand((N, 1) if shared else (K, N, 1), generator=g) > 0.5).to(dtype)
    model = TanhNetEnsemble(K, D, H, dtype=dtype, seeds=list(range(seed, seed + K)))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype))
    return model, X, y


def own(X, y, k):
    return (X, y) if X.dim() == 2 else (X[k], y[k])


def flat_gradient(net, X, y):
    net.zero_grad()
    net.loss(X, y).backward()
    return torch.cat([p.grad.reshape(-1) for p in (net.U, net.b, net.W, net.c)])


@settings(max_examples=25, deadline=None)
@given(K=st.integers(1, 5), N=st.integers(1, 30), D=st.integers(1, 4), H=st.integers(1, 5), shared=st.booleans(),
       seed=st.integers(0, 2**16), scale=st.sampled_from([0.3, 1.0, 4.0]))
def test_each_networks_hessian_and_gradient_equal_the_landscape_helpers(K, N, D, H, shared, seed, scale):
    model, X, y = problem(K, N, D, H, seed, shared, scale)
    grad, hess = ensemble_gradient_and_hessian(X, *(p.detach() for p in model.parameters()), y)
    assert hess.shape == (K, H * D + 2 * H + 1, H * D + 2 * H + 1)
    torch.testing.assert_close(ensemble_gradient(X, *(p.detach() for p in model.parameters()), y), grad, rtol=0,
                               atol=0)
    for k in range(K):
        Xk, yk = own(X, y, k)
        torch.testing.assert_close(hess[k], hessian(model[k], Xk, yk), rtol=0, atol=1e-10)
        torch.testing.assert_close(grad[k], flat_gradient(model[k], Xk, yk), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype,scale", [(torch.float64, 1e160), (torch.float32, 1e20)])
def test_inputs_whose_squares_overflow_leave_the_hessian_finite_where_it_is(dtype, scale):
    """Every unit saturated (h'' = 0) by inputs whose squares overflow the dtype: the Hessian is finite (the
    landscape's forward-over-reverse gives it), and the closed form formed x̃x̃ᵀ = inf first, then inf·0 = NaN."""
    model, X, y = problem(3, 6, 2, 3, seed=0, shared=True, dtype=dtype)
    X = X * scale
    grad, hess = ensemble_gradient_and_hessian(X, *(p.detach() for p in model.parameters()), y)
    assert bool(hess.isfinite().all()) and bool(grad.isfinite().all())
    if dtype == torch.float64:
        for k in range(3):
            torch.testing.assert_close(hess[k], hessian(model[k], X, y), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_curvature_is_each_networks_gradient_norm_and_extreme_eigenvalues_in_float64(dtype, monkeypatch):
    model, X, y = problem(7, 50, 2, 3, 1, dtype=dtype)
    monkeypatch.setitem(metrics.CHUNK, "cpu", 2 * 50 * 13)  # batches of 2 networks: 4 batches, the last of 1
    got = curvature(model, X, y)
    assert got.dtype == torch.float64 and got.shape == (7, len(CURVATURE))
    for k in range(7):
        net = model[k].double()  # the weights as they are, in float64, as curvature reads them
        Xk, yk = X[k].double(), y[k].double()
        eigenvalues = hessian_eigenvalues(net, Xk, yk)
        assert got[k, 0].item() == pytest.approx(flat_gradient(net, Xk, yk).norm().item(), rel=1e-12, abs=1e-15)
        assert got[k, 1:].tolist() == pytest.approx([eigenvalues[0].item(), eigenvalues[-1].item()], rel=1e-10,
                                                    abs=1e-10)
    monkeypatch.setitem(metrics.CHUNK, "cpu", 2**19)  # one batch of all: the same numbers
    torch.testing.assert_close(curvature(model, X, y), got, rtol=1e-12, atol=1e-14)


def test_a_network_with_nan_or_infinite_weights_gets_nan_and_leaves_the_others_alone():
    model, X, y = problem(4, 30, 2, 3, 2)
    want = curvature(model, X, y)
    with torch.no_grad():
        model.U[1, 0, 0] = float("nan")
        model.c[3, 0] = float("inf")
    got = curvature(model, X, y)
    assert torch.isnan(got[[1, 3]]).all()
    torch.testing.assert_close(got[[0, 2]], want[[0, 2]], rtol=0, atol=0)


def test_above_the_cap_only_the_gradient_norm_is_computed():
    H = (MAX_HESSIAN_PARAMETERS - 1) // 4 + 1  # D = 2: P = 4H + 1 = MAX_HESSIAN_PARAMETERS + 4
    model, X, y = problem(2, 20, 2, H, 3)
    got = curvature(model, X, y)
    assert torch.isnan(got[:, 1:]).all()
    for k in range(2):
        assert got[k, 0].item() == pytest.approx(flat_gradient(model[k], X[k], y[k]).norm().item(), rel=1e-12)
    model, X, y = problem(2, 20, 2, (MAX_HESSIAN_PARAMETERS - 1) // 4, 3)  # P = MAX_HESSIAN_PARAMETERS: computed
    assert torch.isfinite(curvature(model, X, y)).all()


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_results_csv_holds_each_runs_gradient_norm_and_eigenvalues_empty_above_the_cap(tmp_path):
    wide = (MAX_HESSIAN_PARAMETERS - 1) // 4 + 1
    values = {"dataset": ["xor"], "n_samples": [60], "epochs": [30], "hidden": [2, 3, wide], "dtype": ["float64"]}
    result = sweep(SweepConfig(values=values, seeds=[0, 1, 2], logdir=str(tmp_path / "s"), progress=False, gallery=0))
    rows = read_csv(tmp_path / "s" / "results.csv")
    assert set(CURVATURE) <= set(rows[0])
    configs = {run.index: run.config for group in result.plan.groups for run in group.runs}
    for got, row in zip(rows, result.results.rows):
        assert all(float(got[c]) == row[c] for c in CURVATURE if got[c])  # repr reads back exactly
        split = load_split(configs[row["run"]])  # the run's own training set, as train.py draws it
        net = network(tmp_path / "s", row["run"])
        grad = flat_gradient(net, split.X_train, split.y_train).norm().item()
        assert float(got["norm/grad/total"]) == pytest.approx(grad, rel=1e-10, abs=1e-14)
        if row["hidden"] == wide:
            assert got["loss_hessian/min_eigenvalue"] == got["loss_hessian/max_eigenvalue"] == ""
            continue
        eigenvalues = hessian_eigenvalues(net, split.X_train, split.y_train)
        assert float(got["loss_hessian/min_eigenvalue"]) == pytest.approx(eigenvalues[0].item(), abs=1e-10)
        assert float(got["loss_hessian/max_eigenvalue"]) == pytest.approx(eigenvalues[-1].item(), abs=1e-10)


def test_a_diverged_run_has_empty_cells(tmp_path):
    values = {"dataset": ["moons"], "n_samples": [60], "epochs": [40], "lr": [0.5, 1e38], "dtype": ["float32"]}
    sweep(SweepConfig(values=values, seeds=[0, 1], logdir=str(tmp_path / "s"), progress=False, gallery=0))
    rows = read_csv(tmp_path / "s" / "results.csv")
    assert [bool(r["diverged_at"]) for r in rows] == [False, False, True, True]  # lr 1e38 overflows
    assert all(r[c] == "" for r in rows[2:] for c in CURVATURE)
    assert all(r[c] != "" for r in rows[:2] for c in CURVATURE)
