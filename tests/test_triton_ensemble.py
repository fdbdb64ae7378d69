"""K networks on CUDA (torch_tanhnet.kernels.triton_kernel.ensemble_loss_and_gradients): one launch for all of them.

The kernels' maths for K networks is checked in Triton's interpreter on the CPU with the single network's
(tests/triton_interpret_worker.py, run by test_triton_kernel.py); here, the choice of path and its
fallbacks on any machine, and on a CUDA machine the compiled kernels through the ensemble's training path.
"""

import pytest
import torch
from test_ensemble_fused import problem
from test_triton_kernel import _spy as spy_on
from test_triton_kernel import fresh_warning, needs_cuda_triton  # noqa: F401 (fresh_warning: a fixture)
from torch.autograd import gradcheck

from torch_tanhnet import TanhNetEnsemble
from torch_tanhnet.ensemble.function import ensemble_reference_loss
from torch_tanhnet.ensemble.fused import EnsembleLossFunction
from torch_tanhnet.kernels import torch_ops, triton_kernel
from torch_tanhnet.kernels.dispatch import TritonOrTorchOps, ensemble_fused_implementation

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-4, atol=1e-5)}


class Recording:
    """Stands in for a Triton kernel: records each launch's grid and arguments, writes nothing."""

    def __init__(self):
        self.launches = []

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.launches.append((grid, args, kwargs))


@pytest.mark.parametrize("K,N,shared_X,shared_y", [(1, 1000, True, True), (3, 1000, False, True),
                                                   (5, 300, True, False), (1000, 10, False, False)])
def test_k_networks_are_one_launch_with_their_own_programs_and_data(monkeypatch, K, N, shared_X, shared_y):
    kernel = Recording()
    monkeypatch.setattr(triton_kernel, "triton", object())
    monkeypatch.setattr(triton_kernel, "_seed_loss_kernel", kernel, raising=False)
    X, params, y = problem(K, N, 2, 3, shared_X, shared_y, torch.float32)
    eps, grads, X_bar = triton_kernel.ensemble_loss_and_gradients(X, *params, y, False)
    assert len(kernel.launches) == 1
    (grid, args, _), = kernel.launches
    P, X_k, y_k = args[-3:]
    n_tiles = -(-N // triton_kernel.SEED_BLOCK)
    assert grid == (K * P,) and 1 <= P <= n_tiles and K * P <= max(K, 4)  # the interpreter's 4 programs here
    assert (X_k, y_k) == (0 if shared_X else N * 2, 0 if shared_y else N)
    assert eps.shape == (K,) and [g.shape for g in grads] == [p.shape for p in params] and X_bar is None


@pytest.mark.usefixtures("fresh_warning")
def test_without_triton_or_off_cuda_the_ensemble_runs_elsewhere(monkeypatch):
    X, params, y = problem(4, 10, 2, 3, True, True, torch.float32)
    assert ensemble_fused_implementation(X, *params, y) is not TritonOrTorchOps  # CPU tensors: the C kernels
    monkeypatch.setattr(triton_kernel, "triton", None)
    with pytest.warns(RuntimeWarning, match="Triton >= 3.0 is needed"):
        assert not triton_kernel.usable(X, params[0])
    monkeypatch.setattr(triton_kernel, "triton", object())
    assert triton_kernel.usable(X, params[0])
    assert not triton_kernel.usable(torch.zeros(1, 8), torch.zeros(4, 9, 8))  # 16 × 8 after rounding up: too wide


@pytest.mark.usefixtures("fresh_warning")
def test_a_failed_ensemble_launch_warns_once_and_torch_ops_give_the_numbers(monkeypatch):
    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise RuntimeError("out of resource: shared memory")
            return launch

    monkeypatch.setattr(triton_kernel, "triton", object())
    monkeypatch.setattr(triton_kernel, "_seed_loss_kernel", Broken(), raising=False)
    X, params, y = problem(6, 50, 2, 3, False, True, torch.float64)
    with pytest.warns(RuntimeWarning, match="RuntimeError: out of resource"):
        eps, grads, X_bar = TritonOrTorchOps.ensemble_loss_and_gradients(X, *params, y, True)
    assert not triton_kernel.usable(X, params[0])  # not tried again
    want = torch_ops.ensemble_loss_and_gradients(X, *params, y, True)
    assert torch.equal(eps, want[0]) and torch.equal(X_bar, want[2])
    assert all(torch.equal(a, b) for a, b in zip(grads, want[1]))


def _spy(monkeypatch) -> list[bool]:
    return spy_on(monkeypatch, "ensemble_loss_and_gradients")


@needs_cuda_triton
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("K,N", [(1, 1), (7, 257), (300, 1000), (4096, 10_000), (3, 300_001)])
@pytest.mark.parametrize("shared_X,shared_y,need_X", [(True, True, False), (False, False, True), (True, False, True)])
def test_cuda_ensemble_path_runs_the_kernel_and_equals_the_reference(monkeypatch, dtype, K, N, shared_X, shared_y,
                                                                      need_X):
    calls = _spy(monkeypatch)
    X, params, y = problem(K, N, 2, 3, shared_X, shared_y, dtype, device="cuda")
    impl = ensemble_fused_implementation(X, *params, y)
    assert impl is TritonOrTorchOps
    leaves = [t.clone().requires_grad_(g) for t, g in zip((X, *params), (need_X, True, True, True, True))]
    eps_bar = torch.linspace(-1.0, 2.0, K, dtype=dtype, device="cuda")
    eps = EnsembleLossFunction.apply(impl, *leaves, y)
    grads = torch.autograd.grad(eps, [t for t in leaves if t.requires_grad], eps_bar)
    assert calls == [True], "the Triton kernel did not run"
    ref_leaves = [t.detach().double().requires_grad_(t.requires_grad) for t in leaves]
    ref = ensemble_reference_loss(*ref_leaves, y.double())
    ref_grads = torch.autograd.grad(ref, [t for t in ref_leaves if t.requires_grad], eps_bar.double())
    torch.testing.assert_close(eps.double(), ref.detach(), **TOL[dtype])
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a.double(), r, **TOL[dtype])


@needs_cuda_triton
@pytest.mark.parametrize("D,H", [(2, 3), (3, 5)])
def test_cuda_ensemble_gradcheck(monkeypatch, D, H):
    calls = _spy(monkeypatch)
    X, params, y = problem(3, 300, D, H, False, True, torch.float64, device="cuda")
    leaves = [t.requires_grad_(True) for t in (X, *params)]
    assert gradcheck(EnsembleLossFunction.apply, (TritonOrTorchOps, *leaves, y))
    assert calls and all(calls)


@needs_cuda_triton
def test_cuda_ensemble_trains_through_the_kernel(monkeypatch):
    calls = _spy(monkeypatch)
    torch.manual_seed(0)
    ensemble = TanhNetEnsemble(64).cuda()
    X = torch.randn(2048, 2, device="cuda")
    y = (X[:, :1] * X[:, 1:] > 0).float()  # XOR by quadrants
    opt = torch.optim.Adam(ensemble.parameters(), lr=0.05)
    first = None
    for _ in range(300):
        opt.zero_grad()
        loss = ensemble.loss(X, y)
        loss.sum().backward()
        opt.step()
        first = first if first is not None else loss.detach().clone()
    assert calls == [True] * 300
    assert (loss < first).all() and loss.mean() < 0.6 * first.mean()
