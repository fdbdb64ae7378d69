"""The ensemble's fused training pass (C kernel and torch ops) against the reference composition."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from torch_tanhnet.ensemble.function import ensemble_reference_loss
from torch_tanhnet.ensemble.fused import EnsembleLossFunction
from torch_tanhnet.kernels import c_kernels, dispatch, torch_ops

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-4, atol=2e-5)}


def problem(K, N, D, H, shared_X, shared_y, dtype, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn((N, D) if shared_X else (K, N, D), generator=g, dtype=torch.float64)
    y = torch.rand((N, 1) if shared_y else (K, N, 1), generator=g, dtype=torch.float64)
    params = [torch.randn(s, generator=g, dtype=torch.float64) for s in ((K, H, D), (K, H), (K, 1, H), (K, 1))]
    to = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    return to(X), [to(p) for p in params], to(y)


def c_kernels_for(X):
    lib = dispatch.c_kernels(X.dtype)
    if lib is None:
        pytest.skip("the C kernels are unavailable here")
    return lib


def compare(impl, X, params, y, tol, need_X=True):
    """ε and every gradient of the fused pass (with per-network ε̄_k) against the reference composition."""
    X = X.detach().requires_grad_(need_X)
    params = [p.detach().requires_grad_(True) for p in params]
    eps_bar = torch.linspace(-1.0, 2.0, params[0].shape[0], dtype=X.dtype, device=X.device)
    ref = ensemble_reference_loss(X, *params, y)
    ref_grads = torch.autograd.grad(ref, ([X] if need_X else []) + params, eps_bar)
    eps = EnsembleLossFunction.apply(impl, X, *params, y)
    grads = torch.autograd.grad(eps, ([X] if need_X else []) + params, eps_bar)
    torch.testing.assert_close(eps, ref, **tol)
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a, r, **tol)


@given(K=st.integers(1, 6), N=st.integers(1, 600), D=st.integers(1, 4), H=st.integers(1, 5),
       shared_X=st.booleans(), shared_y=st.booleans(), need_X=st.booleans(),
       dtype=st.sampled_from([torch.float64, torch.float32]), seed=st.integers(0, 2**16))
def test_c_kernel_and_torch_ops_equal_the_reference(K, N, D, H, shared_X, shared_y, need_X, dtype, seed):
    X, params, y = problem(K, N, D, H, shared_X, shared_y, dtype, seed)
    for impl in (dispatch.c_kernels(dtype), torch_ops):  # the C kernels (None where they cannot build), then torch ops
        if impl is not None:
            compare(impl, X, params, y, TOL[dtype], need_X)


@pytest.mark.parametrize("K,splits,threads", [(1, 3, 2), (3, 2, 2), (2, 5, 4), (5, 1, 3)])
@pytest.mark.parametrize("D,H", [(2, 3), (3, 4)])
def test_networks_split_over_threads_and_chunks_equal_the_reference(monkeypatch, K, splits, threads, D, H):
    monkeypatch.setattr(c_kernels, "ensemble_schedule", lambda K, N, lanes=False: (threads, splits))
    X, params, y = problem(K, 3 * 256 + 17, D, H, True, False, torch.float64)
    lib = c_kernels_for(X)
    compare(lib, X, params, y, TOL[torch.float64], need_X=False)
    compare(lib, X, params, y, TOL[torch.float64], need_X=True)


def test_schedule_gives_whole_networks_to_threads_when_there_are_many():
    torch_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert c_kernels.ensemble_schedule(1, 256) == (1, 1)  # too little work for a second thread
        assert c_kernels.ensemble_schedule(1024, 256) == (4, 1)  # many networks: whole networks per thread
        threads, splits = c_kernels.ensemble_schedule(2, 10**6)  # few networks, many samples: each network split
        assert threads == 4 and splits * 2 >= 4
    finally:
        torch.set_num_threads(torch_threads)


def test_results_do_not_depend_on_timing():
    X, params, y = problem(7, 2000, 2, 3, True, True, torch.float32)
    lib = c_kernels_for(X)
    runs = [lib.ensemble_loss_and_gradients(X, *params, y, False) for _ in range(3)]
    for eps, grads, _ in runs[1:]:
        assert torch.equal(eps, runs[0][0])
        assert all(torch.equal(a, b) for a, b in zip(grads, runs[0][1]))


def test_the_pass_dispatch_chooses_on_each_device_equals_the_reference(device):
    # the C kernels on the CPU, Triton (or torch ops without it) on CUDA
    X, params, y = problem(4, 300, 2, 3, True, False, torch.float64, device=device)
    compare(dispatch.ensemble_fused_implementation(X, *params, y), X, params, y, TOL[torch.float64])


class Lanes:
    """The C kernels with the lane kernel forced on or off, whatever ensemble_lanes would choose."""

    def __init__(self, lib, lanes: bool) -> None:
        self.lib, self.lanes = lib, lanes

    def ensemble_loss_and_gradients(self, *args):
        return self.lib.ensemble_loss_and_gradients(*args, lanes=self.lanes)


@given(K=st.integers(1, 50), N=st.integers(1, 300), shared_X=st.booleans(), shared_y=st.booleans(),
       scale=st.sampled_from([0.1, 1.0, 4.0]), seed=st.integers(0, 2**16))
def test_the_lane_kernel_equals_the_reference(K, N, shared_X, shared_y, scale, seed):
    """float32, 16 networks a unit (K below 16 and partial last groups included), against float64."""
    X, params, y = problem(K, N, 2, 3, shared_X, shared_y, torch.float64, seed)
    params = [p * scale for p in params]  # large weights: saturated tanh, |z| in the tens
    lib = c_kernels_for(X.float())
    lanes = Lanes(lib, True)
    X32, p32, y32 = X.float(), [p.float() for p in params], y.float()
    eps, grads, _ = lanes.ensemble_loss_and_gradients(X32, *p32, y32, False)
    ref = ensemble_reference_loss(X, *[p.requires_grad_(True) for p in params], y)
    ref_grads = torch.autograd.grad(ref.sum(), params)
    torch.testing.assert_close(eps.double(), ref.detach(), **TOL[torch.float32])
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a.double(), r, **TOL[torch.float32])
    compare(lanes, X32, p32, y32, TOL[torch.float32], need_X=False)  # through the Function, per-network ε̄


@pytest.mark.parametrize("K,splits,threads", [(16, 1, 2), (40, 3, 2), (33, 2, 5), (100, 1, 3), (17, 4, 1)])
def test_lane_units_split_over_threads_and_chunks_equal_one_thread(monkeypatch, K, splits, threads):
    """Any schedule gives the same numbers as one thread given the same splits, bit for bit."""
    X, params, y = problem(K, 3 * 256 + 17, 2, 3, False, True, torch.float32)
    lib = c_kernels_for(X)
    monkeypatch.setattr(c_kernels, "ensemble_schedule", lambda K, N, lanes=False: (1, splits))
    alone = lib.ensemble_loss_and_gradients(X, *params, y, False, lanes=True)
    monkeypatch.setattr(c_kernels, "ensemble_schedule", lambda K, N, lanes=False: (threads, splits))
    split = lib.ensemble_loss_and_gradients(X, *params, y, False, lanes=True)
    assert torch.equal(alone[0], split[0]) and all(torch.equal(a, b) for a, b in zip(alone[1], split[1]))


def test_the_lane_kernel_is_chosen_for_float32_seed_networks_only():
    assert c_kernels.ensemble_lanes(1024, 2, 3, torch.float32, False)
    assert not c_kernels.ensemble_lanes(15, 2, 3, torch.float32, False)  # most lanes would idle
    assert not c_kernels.ensemble_lanes(1024, 2, 3, torch.float64, False)
    assert not c_kernels.ensemble_lanes(1024, 3, 3, torch.float32, False)
    assert not c_kernels.ensemble_lanes(1024, 2, 3, torch.float32, True)  # X̄ wanted
    X, params, y = problem(20, 10, 3, 4, True, True, torch.float32)
    with pytest.raises(ValueError, match="lane kernel takes float32 networks of 2 inputs and 3 hidden units"):
        c_kernels_for(X).ensemble_loss_and_gradients(X, *params, y, False, lanes=True)


@pytest.mark.parametrize("lanes", [True, False])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_network_with_non_finite_weights_spoils_only_itself(lanes, bad):
    """Its ε and gradients are not finite, as the reference's are; every other network's are untouched."""
    K = 20
    X, params, y = problem(K, 300, 2, 3, True, False, torch.float32)
    params[0][5, 1, 0] = bad  # network 5's u_10
    params[2][5, 0, 2] = bad if math.isnan(bad) else 1.0  # and, for NaN, its w_2 too
    lib = c_kernels_for(X)
    eps, grads, _ = lib.ensemble_loss_and_gradients(X, *params, y, False, lanes=lanes)
    ref = ensemble_reference_loss(X.double(), *[p.double().requires_grad_(True) for p in params], y.double())
    ok = torch.arange(K) != 5
    torch.testing.assert_close(eps[ok].double(), ref[ok].detach(), **TOL[torch.float32])
    if math.isnan(bad):
        assert torch.isnan(eps[5]) and all(torch.isnan(g[5]).any() for g in grads)
    else:
        assert torch.isfinite(eps[5]) == torch.isfinite(ref[5])  # an infinite u saturates tanh: finite
        torch.testing.assert_close(eps[5].double(), ref[5].detach(), **TOL[torch.float32])


@pytest.mark.parametrize("reduce", ["sum", "mean", "weighted"])
def test_backward_through_sum_mean_or_weights_accumulates_right_even_with_a_retained_graph(reduce):
    """loss.sum() hands the kernel's gradients on as they are, loss.mean() scales them by one number,
    weights by one each; three backward passes through one retained graph give three times the gradients."""
    X, params, y = problem(20, 50, 2, 3, True, True, torch.float64)
    params = [p.requires_grad_(True) for p in params]
    weights = torch.linspace(0.5, 2.0, 20, dtype=torch.float64)
    reduce_fn = {"sum": torch.sum, "mean": torch.mean, "weighted": lambda e: (e * weights).sum()}[reduce]
    ref = torch.autograd.grad(reduce_fn(ensemble_reference_loss(X, *params, y)), params)
    out = reduce_fn(EnsembleLossFunction.apply(c_kernels_for(X), X, *params, y))
    for _ in range(3):
        out.backward(retain_graph=True)
    for p, r in zip(params, ref):
        torch.testing.assert_close(p.grad, 3 * r, **TOL[torch.float64])
