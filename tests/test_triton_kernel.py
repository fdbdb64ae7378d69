"""The CUDA training kernel (torch_tanhnet.triton_kernel): equal to the reference, and its fallbacks.

Its maths is checked on any machine with Triton installed, in Triton's interpreter on the CPU
(tests/triton_interpret_worker.py); on a CUDA machine the compiled kernel is checked through
the training path itself. Without Triton (CPU-only PyTorch wheels) those skip, and only the
fallback logic runs.
"""

import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import make_data, make_params
from torch.autograd import gradcheck

from torch_tanhnet import TanhNet
from torch_tanhnet.cost import BCEWithLogitsFunction
from torch_tanhnet.kernels import triton_kernel
from torch_tanhnet.kernels.dispatch import TritonOrTorchOps, fused_implementation
from torch_tanhnet.kernels.functions import FusedLossFunction
from torch_tanhnet.network import TanhNetFunction

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_cuda_triton = pytest.mark.skipif(not (torch.cuda.is_available() and triton_kernel.triton is not None),
                                       reason="needs a CUDA device and Triton")
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-13), torch.float32: dict(rtol=2e-4, atol=2e-6)}


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(triton_kernel, "_warned", False)
    monkeypatch.setattr(triton_kernel, "_failed", set())


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
def test_kernel_equals_the_reference_in_the_triton_interpreter():
    worker = Path(__file__).parent / "triton_interpret_worker.py"
    r = subprocess.run([sys.executable, str(worker)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    checked = re.search(r"checked (\d+) cases and the properties", r.stdout)
    # one network: each kernel, each tile edge, both dtypes, with and without X̄ (56); K networks: shared and
    # per-network data, several programs a network and one, both kernels (228)
    assert checked and int(checked[1]) >= 284, r.stdout


def test_without_triton_the_torch_schedule_runs_after_one_warning(monkeypatch, fresh_warning):
    monkeypatch.setattr(triton_kernel, "triton", None)
    X, U = torch.zeros(4, 2), torch.zeros(3, 2)
    with pytest.warns(RuntimeWarning, match="fused CUDA kernel is unavailable .*Triton >= 3.0 is needed"):
        assert not triton_kernel.usable(X, U)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not triton_kernel.usable(X, U)  # once only


def test_a_failed_launch_warns_once_and_is_not_retried(monkeypatch, fresh_warning):
    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise RuntimeError("ptxas fatal: something went wrong\nPTX compilation failed")
            return launch

    monkeypatch.setattr(triton_kernel, "triton", object())  # "installed"
    monkeypatch.setattr(triton_kernel, "_fused_loss_kernel", Broken(), raising=False)
    monkeypatch.setattr(triton_kernel, "_seed_loss_kernel", Broken(), raising=False)
    X, y = make_data(8, 2, dtype=torch.float32)
    U, b, W, c = make_params(2, 3, dtype=torch.float32, requires_grad=False)
    assert triton_kernel.usable(X, U)
    with pytest.warns(RuntimeWarning, match="RuntimeError: PTX compilation failed"):
        assert triton_kernel.loss_and_gradients(X, U, b, W, c, y, False) is None
    assert not triton_kernel.usable(X, U)


def test_a_first_slow_launch_says_it_compiled_once(monkeypatch, capsys):
    launches = []

    class Compiling:  # stands in for a Triton kernel whose first launch compiles
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launches.append(grid)

    monkeypatch.setattr(triton_kernel, "triton", object())
    monkeypatch.setattr(triton_kernel, "_seed_loss_kernel", Compiling(), raising=False)
    monkeypatch.setattr(triton_kernel, "_launched", set())
    monkeypatch.setattr(triton_kernel, "COMPILE_NOTE_S", -1.0)  # any first launch counts as slow
    X, y = make_data(8, 2, dtype=torch.float32)
    U, b, W, c = make_params(2, 3, dtype=torch.float32, requires_grad=False)
    for _ in range(2):
        triton_kernel.loss_and_gradients(X, U, b, W, c, y, False)
    assert len(launches) == 2
    err = capsys.readouterr().err
    assert err.count("torch-tanhnet: compiled the fused CUDA kernel (torch.float32, D = 2, H = 3) with Triton") == 1


def test_wide_networks_and_other_dtypes_use_the_torch_schedule(monkeypatch):
    monkeypatch.setattr(triton_kernel, "triton", object())
    assert triton_kernel.usable(torch.zeros(1, 8, dtype=torch.float64), torch.zeros(8, 8, dtype=torch.float64))
    assert not triton_kernel.usable(torch.zeros(1, 8), torch.zeros(9, 8))  # 16 × 8 after rounding up
    assert not triton_kernel.usable(torch.zeros(1, 2, dtype=torch.float16), torch.zeros(3, 2, dtype=torch.float16))
    monkeypatch.setenv("TORCH_TANHNET_NO_EXTENSION", "1")
    assert not triton_kernel.usable(torch.zeros(1, 2), torch.zeros(3, 2))


def test_cpu_tensors_never_reach_the_triton_kernel():
    X, U = torch.zeros(4, 2), torch.zeros(3, 2)
    b, W, c, y = torch.zeros(3), torch.zeros(1, 3), torch.zeros(1), torch.zeros(4, 1)
    assert fused_implementation(X, U, b, W, c, y) is not TritonOrTorchOps


def _spy(monkeypatch, runner: str = "loss_and_gradients") -> list[bool]:
    """Record, per call of a Triton kernel's runner, whether it ran (True) or gave up (False)."""
    calls = []
    real = getattr(triton_kernel, runner)

    def spy(*args):
        found = real(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(triton_kernel, runner, spy)
    return calls


def _reference(X, U, b, W, c, y, grad):
    leaves = [t.detach().cpu().double().requires_grad_(g) for t, g in zip((X, U, b, W, c), grad)]
    eps = BCEWithLogitsFunction.apply(TanhNetFunction.apply(*leaves)[0], y.detach().cpu().double())
    wanted = [t for t in leaves if t.requires_grad]
    return eps.detach(), dict(zip([id(t) for t in wanted], torch.autograd.grad(eps, wanted))), leaves


@needs_cuda_triton
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("N", [1, 255, 257, 100_003, 3_000_001])
@pytest.mark.parametrize("grad", [(False, True, True, True, True), (True, True, True, True, True),
                                  (True, False, False, True, False)])
def test_cuda_training_path_runs_the_kernel_and_equals_the_reference(monkeypatch, dtype, N, grad):
    calls = _spy(monkeypatch)
    X, y = make_data(N, 2, dtype=dtype, device="cuda")
    params = make_params(2, 3, dtype=dtype, device="cuda", requires_grad=False)
    leaves = [t.clone().requires_grad_(g) for t, g in zip((X, *params), grad)]
    eps = FusedLossFunction.apply(fused_implementation(X, *params, y), *leaves, y)
    eps.backward()
    assert calls == [True], "the Triton kernel did not run"
    ref_eps, ref_grads, ref_leaves = _reference(X, *params, y, grad)
    tol = TOL[dtype] if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(eps.double().cpu(), ref_eps, **tol)
    for leaf, ref_leaf in zip(leaves, ref_leaves):
        if ref_leaf.requires_grad:
            torch.testing.assert_close(leaf.grad.double().cpu(), ref_grads[id(ref_leaf)], **tol)
        else:
            assert leaf.grad is None


@needs_cuda_triton
def test_cuda_kernel_gradcheck():
    X, y = make_data(600, 2, device="cuda", requires_grad=True)
    params = make_params(2, 3, device="cuda")
    assert fused_implementation(X, *params, y) is TritonOrTorchOps
    assert gradcheck(FusedLossFunction.apply, (triton_kernel, X, *params, y))


@needs_cuda_triton
def test_cuda_module_trains_through_the_kernel(monkeypatch):
    calls = _spy(monkeypatch)
    torch.manual_seed(0)
    net = TanhNet().cuda()
    X = torch.randn(4096, 2, device="cuda")
    y = (X[:, :1] + X[:, 1:] > 0).float()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = net.loss(X, y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert calls == [True] * 200
    assert loss.item() < 0.5 * first
