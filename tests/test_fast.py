"""The fast paths equal the reference Functions: values and gradients, shapes, dtypes, devices, subsets."""

import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import SCRIPTS, load_script, make_data, make_params
from torch.autograd import gradcheck, gradgradcheck

from torch_tanhnet import TanhNet, bce_with_logits, tanhnet, tanhnet_loss
from torch_tanhnet.cost import BCEWithLogitsFunction
from torch_tanhnet.kernels import c_kernels, dispatch, torch_ops
from torch_tanhnet.kernels import cpu as extension
from torch_tanhnet.kernels.functions import FastBCEWithLogitsFunction, FastTanhNetFunction, FusedLossFunction
from torch_tanhnet.network import TanhNetFunction

# N = 1, a partial block, several blocks, and enough samples to run on several threads
SHAPES = [(1, 2, 3), (300, 2, 3), (1000, 3, 5), (c_kernels.PARALLEL_MIN + 999, 2, 3), (37, 1, 1), (64, 5, 16)]
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-13), torch.float32: dict(rtol=2e-4, atol=2e-6)}
REFERENCE = lambda X, U, b, W, c, y: BCEWithLogitsFunction.apply(TanhNetFunction.apply(X, U, b, W, c)[0], y)  # noqa


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    """Run each test on the kernels (C on the CPU, Triton on CUDA) and on the pure-PyTorch fallback."""
    if request.param == "kernel":
        if extension.kernels("float32") is None:
            pytest.skip("no C compiler: the kernels are unavailable here")
    else:
        monkeypatch.setattr(dispatch, "c_kernels", lambda dtype: None)
    return request.param


def inputs(N, D, H, dtype, device="cpu", grad=(True,) * 5):
    X, y = make_data(N, D, dtype=dtype, device=device)
    params = make_params(D, H, dtype=dtype, device=device, requires_grad=False)
    return [t.clone().requires_grad_(g) for t, g in zip([X, *params], grad)], y


def assert_same_loss_and_gradients(fn, N, D, H, dtype, device="cpu", grad=(True,) * 5):
    leaves, y = inputs(N, D, H, dtype, device, grad)
    want_leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in leaves]
    eps = fn(*leaves, y)
    ref = REFERENCE(*want_leaves, y)
    torch.testing.assert_close(eps, ref, **TOL[dtype])
    needs = [t for t in leaves if t.requires_grad]
    if not needs:
        return
    mine = torch.autograd.grad(eps, needs)
    want = torch.autograd.grad(ref, [t for t in want_leaves if t.requires_grad])
    for a, r in zip(mine, want):
        torch.testing.assert_close(a, r, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("N,D,H", SHAPES)
def test_fused_loss_equals_reference(path, N, D, H, dtype):
    assert_same_loss_and_gradients(tanhnet_loss, N, D, H, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("N", [1, 255, 257, 4096, c_kernels.PARALLEL_MIN + 999])
def test_fused_loss_of_the_seed_network_equals_reference(path, N, dtype):
    # D = 2, H = 3 with X needing no gradient, the training case, has a kernel of its own
    assert_same_loss_and_gradients(tanhnet_loss, N, 2, 3, dtype, grad=(False, True, True, True, True))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("N,D,H", SHAPES)
def test_composed_fast_functions_equal_reference(path, N, D, H, dtype):
    assert_same_loss_and_gradients(lambda *a: bce_with_logits(tanhnet(*a[:5]), a[5]), N, D, H, dtype)


def test_composed_path_runs_the_fast_functions_with_or_without_kernels(path):
    # without the C kernels the same Functions run torch ops; the reference serves compile and torch.func
    X, y = make_data(10, 2)
    z = tanhnet(X, *make_params(2, 3))
    assert type(z.grad_fn).__name__ == "FastTanhNetFunctionBackward"
    assert type(bce_with_logits(z, y).grad_fn).__name__ == "FastBCEWithLogitsFunctionBackward"


@pytest.mark.parametrize("grad", [g for g in itertools.product([False, True], repeat=5)])
def test_any_subset_of_inputs_may_need_gradients(path, grad):
    assert_same_loss_and_gradients(tanhnet_loss, 50, 2, 3, torch.float64, grad=grad)
    assert_same_loss_and_gradients(lambda *a: bce_with_logits(tanhnet(*a[:5]), a[5]), 50, 2, 3, torch.float64,
                                   grad=grad)


def test_fused_loss_on_each_device(device):
    assert_same_loss_and_gradients(tanhnet_loss, 500, 2, 3, torch.float32, device=device)
    assert_same_loss_and_gradients(tanhnet_loss, 500, 2, 3, torch.float64, device=device)


@pytest.mark.parametrize("N", [1, 7])
def test_gradcheck_of_the_fast_functions(N):
    if extension.kernels("float64") is None:
        pytest.skip("no C compiler: the kernels are unavailable here")
    X, y = make_data(N, 2, requires_grad=True)
    p = make_params(2, 3)
    for lib in (dispatch.c_kernels(X.dtype), torch_ops):  # the C kernels and the torch-ops schedule
        assert gradcheck(FusedLossFunction.apply, (lib, X, *p, y))
        assert gradcheck(FastTanhNetFunction.apply, (lib, X, *p))
        assert gradgradcheck(FastTanhNetFunction.apply, (lib, X, *p))  # create_graph: the differentiable equations
        z = torch.randn(N, 1, dtype=torch.float64, requires_grad=True)
        assert gradcheck(FastBCEWithLogitsFunction.apply, (lib, z, y))
        assert gradgradcheck(FastBCEWithLogitsFunction.apply, (lib, z, y))


def seed_model(N=40, D=2, H=3):
    torch.manual_seed(0)
    model = TanhNet(D, H, dtype=torch.float64)
    X, y = make_data(N, D)
    return model, X, y


def penalised_gradients(loss_fn, model, X, wrt):
    """∇θ of ε + Σ‖∂ε/∂w‖² for w in ``wrt``: a gradient penalty, differentiated through the first gradient."""
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    g = torch.autograd.grad(loss, wrt, create_graph=True)
    assert all(gi.requires_grad for gi in g)  # a graph, not numbers
    (loss + sum(gi.pow(2).sum() for gi in g)).backward()
    return [p.grad.clone() for p in model.parameters()] + ([X.grad.clone()] if X.requires_grad else [])


@pytest.mark.parametrize("penalise", ["parameters", "inputs"])
def test_gradient_penalty_through_the_training_path_is_exact(path, penalise):
    # create_graph=True on model.loss (the fused pass) gives what the composition of the reference Functions gives
    model, X, y = seed_model()
    X.requires_grad_(penalise == "inputs")
    wrt = list(model.parameters()) if penalise == "parameters" else [X]
    loss = model.loss(X, y)
    assert type(loss.grad_fn).__name__ == "FusedLossFunctionBackward"
    mine = penalised_gradients(lambda: model.loss(X, y), model, X, wrt)
    if X.requires_grad:
        X.grad = None
    want = penalised_gradients(lambda: REFERENCE(X, *model.parameters(), y), model, X, wrt)
    for a, r in zip(mine, want):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-14)


def test_hessian_vector_product_through_the_training_path_is_exact(path):
    model, X, y = seed_model(N=60, H=5)
    params = list(model.parameters())
    v = [torch.randn_like(p) for p in params]

    def hvp(loss):
        g = torch.autograd.grad(loss, params, create_graph=True)
        return torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), params)

    for a, r in zip(hvp(model.loss(X, y)), hvp(REFERENCE(X, *params, y))):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-14)
    # and the same through torch's own helper
    flat = lambda *ps: REFERENCE(X, *ps, y)  # noqa: E731
    _, want = torch.autograd.functional.hvp(flat, tuple(p.detach() for p in params), tuple(v))
    _, mine = torch.autograd.functional.hvp(lambda *ps: tanhnet_loss(X, *ps, y), tuple(p.detach() for p in params),
                                            tuple(v))
    for a, r in zip(mine, want):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("x_grad", [False, True], ids=["X-constant", "X-needs-grad"])
def test_gradgradcheck_of_the_training_path(path, x_grad):
    X, y = make_data(7, 2, requires_grad=x_grad)
    p = make_params(2, 3)
    assert type(tanhnet_loss(X, *p, y).grad_fn).__name__ == "FusedLossFunctionBackward"
    assert gradgradcheck(tanhnet_loss, (X, *p, y))
    model, X, y = seed_model(N=7)
    assert gradgradcheck(lambda U, b, W, c: _module_loss(model, (U, b, W, c), X, y), tuple(model.parameters()))


def _module_loss(model, params, X, y):
    """model.loss(X, y) with its parameters replaced by ``params`` (for gradgradcheck, which perturbs inputs)."""
    for name, t in zip("UbWc", params):
        model._parameters[name] = t
    return model.loss(X, y)


def test_first_order_backward_ignores_the_saved_inputs_unless_differentiated_again(path):
    # the usual backward scales the saved gradients; the recomputation runs only under create_graph=True
    X, y = make_data(30, 2)
    p = make_params(2, 3)
    plain = torch.autograd.grad(tanhnet_loss(X, *p, y), p)
    graph = torch.autograd.grad(tanhnet_loss(X, *p, y), p, create_graph=True)
    assert not any(g.requires_grad for g in plain) and all(g.requires_grad for g in graph)
    for a, b in zip(plain, graph):
        torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-15)


def test_module_loss_takes_the_fused_path_and_matches_composition():
    torch.manual_seed(0)
    net = TanhNet(2, 3)
    X, y = torch.randn(100, 2), torch.rand(100, 1)
    loss = net.loss(X, y)
    assert type(loss.grad_fn).__name__ == "FusedLossFunctionBackward"
    g = torch.autograd.grad(loss, list(net.parameters()))
    ref = torch.autograd.grad(REFERENCE(X, net.U, net.b, net.W, net.c, y), list(net.parameters()))
    for a, r in zip(g, ref):
        torch.testing.assert_close(a, r, rtol=2e-4, atol=2e-6)
    with torch.no_grad():  # evaluation computes no gradients
        torch.testing.assert_close(net.loss(X, y), loss.detach())


def test_loss_with_labels_needing_gradients_uses_the_composition():
    X, y = make_data(9, 2)
    p = make_params(2, 3)
    y.requires_grad_(True)
    loss = tanhnet_loss(X, *p, y)
    (gy,) = torch.autograd.grad(loss, y)
    torch.testing.assert_close(gy, -tanhnet(X, *p).detach() / 9)


def test_fused_backward_scales_with_the_upstream_gradient(path):
    X, y = make_data(20, 2)
    p = make_params(2, 3)
    g1 = torch.autograd.grad(tanhnet_loss(X, *p, y), p)
    g3 = torch.autograd.grad(3 * tanhnet_loss(X, *p, y), p)
    for a, b in zip(g1, g3):
        torch.testing.assert_close(b, 3 * a, rtol=1e-14, atol=0)


def strided(t: torch.Tensor) -> torch.Tensor:
    """The same values in non-contiguous memory: every other element of a buffer twice the size."""
    buf = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
    buf[..., ::2] = t.detach()
    return buf[..., ::2].requires_grad_(t.requires_grad)


def transposed(t: torch.Tensor) -> torch.Tensor:
    """The same matrix stored column-major (dense, but not contiguous)."""
    return t.detach().t().contiguous().t().requires_grad_(t.requires_grad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", [strided, transposed])
def test_non_contiguous_inputs_give_the_same_loss_and_gradients(path, dtype, layout):
    X, y = make_data(300, 2, dtype=dtype)
    U, b, W, c = make_params(2, 3, dtype=dtype)
    args = [layout(X), layout(U), strided(b), layout(W), c, strided(y) if layout is strided else y]
    assert not any(a.is_contiguous() for a in args[:3])  # X, U, b (a (1, 3) W may count as contiguous)
    for fn in (tanhnet_loss, lambda X, U, b, W, c, y: bce_with_logits(tanhnet(X, U, b, W, c), y)):
        eps = fn(*args)
        ref = REFERENCE(X, U, b, W, c, y)
        torch.testing.assert_close(eps, ref, **TOL[dtype])
        for a, r in zip(torch.autograd.grad(eps, args[1:5]), torch.autograd.grad(ref, (U, b, W, c))):
            torch.testing.assert_close(a, r, **TOL[dtype])


def test_fused_backward_twice_with_retain_graph_accumulates_the_same_gradient(path):
    X, y = make_data(40, 2)
    p = make_params(2, 3)
    loss = tanhnet_loss(X, *p, y)
    once = torch.autograd.grad(loss, p, retain_graph=True)
    loss.backward(retain_graph=True)
    loss.backward()
    for t, g in zip(p, once):
        torch.testing.assert_close(t.grad, 2 * g, rtol=1e-14, atol=0)


def test_module_loss_with_a_parametrized_weight():
    from torch.nn.utils import parametrize

    class Scaled(torch.nn.Module):
        def forward(self, U):
            return 2 * U

    torch.manual_seed(0)
    net = TanhNet(2, 3, dtype=torch.float64)
    X, y = make_data(50, 2)
    parametrize.register_parametrization(net, "U", Scaled())
    loss = net.loss(X, y)
    torch.testing.assert_close(loss, REFERENCE(X, net.U, net.b, net.W, net.c, y), rtol=1e-12, atol=0)
    loss.backward()
    original = net.parametrizations.U.original
    with torch.no_grad():
        U0 = original.detach().clone().requires_grad_(True)
    REFERENCE(X, 2 * U0, net.b.detach(), net.W.detach(), net.c.detach(), y).backward()
    torch.testing.assert_close(original.grad, U0.grad, rtol=1e-12, atol=0)
    torch.testing.assert_close(net(X), tanhnet(X, net.U, net.b, net.W, net.c))


def test_fused_path_saves_no_activations():
    X, y = make_data(10_000, 2, dtype=torch.float32)
    p = make_params(2, 3, dtype=torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        tanhnet_loss(X, *p, y)
    inputs = [X, *p, y]
    # the inputs themselves (the same memory, no copy), for a backward under create_graph=True ...
    references = [t for t in saved if any(t.data_ptr() == i.data_ptr() and t.shape == i.shape for i in inputs)]
    assert len(references) == len(inputs)
    # ... and the gradients of U, b, W, c: nothing of size N was computed for backward
    assert sum(t.numel() for t in saved) - sum(t.numel() for t in references) == 3 * 2 + 3 + 3 + 1


@pytest.fixture
def fresh_extension(monkeypatch, tmp_path):
    monkeypatch.setattr(extension, "_cache", {})
    monkeypatch.setattr(extension, "_warned", False)
    monkeypatch.setenv("TORCH_TANHNET_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCH_TANHNET_NO_EXTENSION", raising=False)
    return tmp_path


def test_extension_builds_once_into_the_cache(fresh_extension, capfd):
    if extension._compiler() is None:
        pytest.skip("no C compiler")
    lib = extension.kernels("float64")
    assert lib is not None
    built = list(fresh_extension.glob("tanhnet_float64_*.so"))
    assert len(built) == 1 and "compiling the fused CPU kernels" in capfd.readouterr().err
    checksum = built[0].with_name(built[0].name + ".sha256")  # beside it, as sha256sum writes it
    assert checksum.read_text() == checksum_line(built[0].read_bytes(), built[0].name)
    assert not list(fresh_extension.glob(".*.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    for path in (built[0], checksum):  # readable as the umask allows (the library was mkstemp's 0600, or 0700)
        assert path.stat().st_mode & 0o044 == 0o044 & ~umask, oct(path.stat().st_mode)
    mtime = built[0].stat().st_mtime_ns
    extension._cache.clear()
    assert extension.kernels("float64") is not None
    assert built[0].stat().st_mtime_ns == mtime and "compiling" not in capfd.readouterr().err


def test_without_a_compiler_the_pure_pytorch_path_runs_after_one_warning(fresh_extension, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(extension, "_compiler", lambda: None)
    with pytest.warns(RuntimeWarning, match="fused CPU kernels are unavailable .no C compiler found"):
        assert extension.kernels("float32") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning comes once
        assert extension.kernels("float64") is None
        X, y = make_data(30, 2)
        p = make_params(2, 3)
        torch.testing.assert_close(tanhnet_loss(X, *p, y), REFERENCE(X, *p, y), rtol=1e-12, atol=0)


@pytest.mark.parametrize("fault", ["checksum cannot be written", "compile cut off", "compiler killed",
                                   "disk full while linking", "no process left (ulimit -u)"])
def test_a_build_that_failed_for_a_passing_reason_is_tried_again(fresh_extension, monkeypatch, fault):
    """Only the compiler's own refusal is remembered (.failed): a checksum that could not be written (a full disk, a
    directory in its place), a compile cut off by the time limit, a compiler killed by a signal (SIGXFSZ under
    ulimit -f) or a linker that met a full disk once left the kernels off for good."""
    if extension._compiler() is None:
        pytest.skip("no C compiler")
    if fault == "checksum cannot be written":
        def broken(path, data):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(extension, "write_atomic", broken)
    elif fault == "compile cut off":
        def broken(*args, **kwargs):
            raise subprocess.TimeoutExpired("cc", 120)
        monkeypatch.setattr(extension.subprocess, "run", broken)
    else:
        code, err = ((-25, "") if fault == "compiler killed" else
                     (1, "cc: fatal error: cannot execute '/usr/libexec/gcc/x86_64-linux-gnu/12/cc1': vfork: Resource "
                         "temporarily unavailable\ncompilation terminated.\n") if fault.startswith("no process") else
                     (1, "/usr/bin/ld: final link failed: No space left on device\n"
                         "collect2: error: ld returned 1 exit status\n"))
        monkeypatch.setattr(extension.subprocess, "run",
                            lambda cmd, **kwargs: subprocess.CompletedProcess(cmd, code, "", err))
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert extension.kernels("float64") is None
    assert not list(fresh_extension.glob("*.failed")) and not list(fresh_extension.glob(".*.tmp"))
    monkeypatch.undo()  # the obstacle gone (and the fixture's settings with it: set them again)
    monkeypatch.setattr(extension, "_cache", {})
    monkeypatch.setattr(extension, "_warned", False)
    monkeypatch.setenv("TORCH_TANHNET_CACHE", str(fresh_extension))
    monkeypatch.delenv("TORCH_TANHNET_NO_EXTENSION", raising=False)
    assert extension.kernels("float64") is not None


@pytest.mark.parametrize("fifo", ["library", "checksum"])
def test_a_fifo_in_the_kernel_cache_is_built_over_not_read(fresh_extension, fifo):
    """A FIFO where the cached library or its checksum stands: reading it for the check waited forever (the run hung
    before its first step). It is not a library: built again, the build's rename putting a file in its place."""
    if extension._compiler() is None:
        pytest.skip("no C compiler")
    assert extension.kernels("float32") is not None
    target = next(fresh_extension.glob("tanhnet_float32_*.so"))
    path = target if fifo == "library" else target.with_name(target.name + ".sha256")
    path.unlink()
    os.mkfifo(path)
    extension._cache.clear()
    assert extension.kernels("float32") is not None  # rebuilt, within the test's own time
    assert path.is_file()


@pytest.mark.parametrize("code, why", [(1, "/opt/cc-wrapper exited with status 1 and printed nothing"),
                                       (-25, "/opt/cc-wrapper was killed by SIGXFSZ")])
def test_a_compiler_that_fails_saying_nothing_is_named_with_its_status(fresh_extension, monkeypatch, code, why):
    """CC set to a wrapper that fails quietly: the warning read "unavailable (failed)", no reason shown."""
    monkeypatch.setattr(extension, "_compiler", lambda: "/opt/cc-wrapper")
    monkeypatch.setattr(extension.subprocess, "run",
                        lambda cmd, **kwargs: subprocess.CompletedProcess(cmd, code, "", ""))
    with pytest.warns(RuntimeWarning, match=f"fused CPU kernels are unavailable \\({why}\\); using the pure"):
        assert extension.kernels("float32") is None


@pytest.mark.parametrize("fault", [AttributeError("undefined symbol: tn_fused_loss"), OSError("file too short")],
                         ids=["no kernels in it", "not a library"])
def test_a_library_without_the_kernels_falls_back_and_is_built_again(fresh_extension, monkeypatch, fault):
    """A compiler that made a library without the kernels' symbols: every later run ended in a traceback
    (AttributeError: undefined symbol), the library being cached with a valid checksum; one that made no library
    at all ("file too short"): every later run went without the kernels, the real compiler's too."""
    if extension._compiler() is None:
        pytest.skip("no C compiler")
    assert extension.kernels("float64") is not None  # built and cached
    monkeypatch.setattr(extension, "_cache", {})

    def empty(path):
        raise fault

    monkeypatch.setattr(extension, "_load", empty)
    with pytest.warns(RuntimeWarning, match=f"cannot be loaded or does not hold the kernels .*{fault}"):
        assert extension.kernels("float64") is None
    monkeypatch.undo()
    monkeypatch.setattr(extension, "_cache", {})
    monkeypatch.setattr(extension, "_warned", False)
    monkeypatch.setenv("TORCH_TANHNET_CACHE", str(fresh_extension))
    monkeypatch.delenv("TORCH_TANHNET_NO_EXTENSION", raising=False)
    assert extension.kernels("float64") is not None  # its checksum gone, built again


def test_the_cache_folder_expands_a_tilde_and_ignores_a_relative_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_TANHNET_CACHE", "~/tt")  # once a folder named ~ in the working folder
    assert extension.cache_dir() == tmp_path / "tt"
    monkeypatch.delenv("TORCH_TANHNET_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "$HOME/.cache")  # quoted by mistake: relative, which the XDG spec ignores
    assert extension.cache_dir() == tmp_path / ".cache" / "torch_tanhnet"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert extension.cache_dir() == tmp_path / "xdg" / "torch_tanhnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    import pwd

    own = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "torch_tanhnet"
    for home in ("", "relative/home"):  # `HOME=` made the cache .cache/torch_tanhnet in the working folder (/)
        monkeypatch.setenv("HOME", home)
        assert extension.cache_dir() == own
    monkeypatch.setenv("TORCH_TANHNET_CACHE", "~nosuchuser/tt")  # the warning named no variable
    with pytest.raises(RuntimeError, match="^TORCH_TANHNET_CACHE='~nosuchuser/tt': Could not determine home"):
        extension.cache_dir()


def test_builders_started_together_build_once_and_all_load_it(fresh_extension, monkeypatch):
    """Three processes started together on a fresh cache (torchrun's, pytest-xdist's workers) each compiled the
    kernels; one builds now while the others wait on its lock file, then load what it built. Two builders (threads
    here: flock conflicts between a process's own open files too) around a build made slow."""
    import threading
    import time

    builds, loaded = [], []

    def build(cc, flags, double, target):
        builds.append(target)
        time.sleep(0.5)  # the others check the cache meanwhile
        target.write_bytes(b"library")
        (target.parent / (target.name + ".sha256")).write_bytes(extension._checksum_line(b"library", target))
        return None, False

    monkeypatch.setattr(extension, "_build", build)
    monkeypatch.setattr(extension, "_load", lambda target: f"loaded {target.name}")
    threads = [threading.Thread(target=lambda: loaded.append(extension._build_or_load("cc", "float32")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(loaded) == 3 and len(set(loaded)) == 1 and loaded[0][1] is None, (builds, loaded)

@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_child_forked_while_the_build_lock_is_held_gets_it_once_the_parent_lets_go(tmp_path):
    """An flock belongs to the open file, which a forked child shares: a child forked while a thread built (a
    DataLoader worker, a multiprocessing pool) waited on the lock held by its own copy, for ever."""
    import signal
    import time

    target = tmp_path / "library.so"
    with extension._one_builder(target):  # held, as a thread that builds holds it
        pid = os.fork()
        if pid == 0:  # the child: waits for the parent's build, then takes the lock
            code = 1
            try:
                with extension._one_builder(target):
                    code = 0
            finally:
                os._exit(code)
        time.sleep(0.3)  # the child is waiting by now
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child still waits on the lock its own copy holds")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(done[1]) == 0

def test_a_failing_build_falls_back_and_is_not_retried(fresh_extension, monkeypatch):
    monkeypatch.setattr(extension, "_compiler", lambda: "false")  # a "compiler" that always fails
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert extension.kernels("float32") is None
    assert len(list(fresh_extension.glob("*.failed"))) == len(extension.ATTEMPTS)


@pytest.fixture(scope="module")
def built_library(tmp_path_factory) -> Path:
    """This machine's float64 kernel library, built once for the tests of damaged caches."""
    cc = extension._compiler()
    if cc is None:
        pytest.skip("no C compiler")
    target = tmp_path_factory.mktemp("built") / f"tanhnet_float64_{extension._machine_key()}_0.so"
    if extension._build(cc, extension.ATTEMPTS[0], True, target)[0] is not None:
        pytest.skip("the kernels do not build here")
    return target


def checksum_line(data: bytes, name: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"  # sha256sum's format


DAMAGED_CACHE_RUN = """
import os, sys, warnings
import torch
from torch_tanhnet import tanhnet_loss
from torch_tanhnet.kernels import cpu, dispatch
warnings.simplefilter("error")  # a fallback to torch ops warns: here it fails
g = torch.Generator().manual_seed(0)
X, y = torch.randn(500, 2, generator=g, dtype=torch.float64), torch.rand(500, 1, generator=g, dtype=torch.float64)
p = [torch.randn(s, generator=g, dtype=torch.float64) for s in [(3, 2), (3,), (1, 3), (1,)]]
for folder in sys.argv[1:]:
    os.environ["TORCH_TANHNET_CACHE"] = folder
    cpu._cache.clear()
    loss = tanhnet_loss(X, *p, y)
    assert cpu._cache["float64"] is not None, folder
    c_kernels, dispatch.c_kernels = dispatch.c_kernels, lambda dtype: None
    torch.testing.assert_close(loss, tanhnet_loss(X, *p, y), rtol=1e-12, atol=0)  # the torch-ops result
    dispatch.c_kernels = c_kernels
"""


def test_a_damaged_or_unchecked_cached_library_is_built_again(built_library, tmp_path):
    """A library cut short or with a byte changed (which could kill the process with SIGBUS when loaded), or one
    without a checksum (caches from before checksums), is built again in its place, then loaded."""
    good = built_library.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    cases = {"truncated": (good[: len(good) // 2], True), "flipped": (bytes(flipped), True), "unchecked": (good, False)}
    for case, (data, with_checksum) in cases.items():
        (tmp_path / case).mkdir()
        (tmp_path / case / built_library.name).write_bytes(data)
        if with_checksum:  # the good library's checksum
            (tmp_path / case / f"{built_library.name}.sha256").write_text(checksum_line(good, built_library.name))
    package_root = str(Path(extension.__file__).parents[2])  # this checkout's package, not an installed one
    env = {**os.environ, "TORCH_TANHNET_NO_EXTENSION": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", DAMAGED_CACHE_RUN, *(str(tmp_path / c) for c in cases)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, f"exit code {r.returncode} (-7: SIGBUS): {r.stderr[-2000:]}"
    assert r.stderr.count("compiling the fused CPU kernels") == len(cases), r.stderr
    for case in cases:
        library = tmp_path / case / built_library.name
        assert (tmp_path / case / f"{library.name}.sha256").read_text() == checksum_line(library.read_bytes(),
                                                                                          library.name), case
        assert not list((tmp_path / case).glob(".*.tmp")), case


def test_a_library_without_its_checksum_is_not_loaded_when_it_cannot_be_built_again(
        built_library, fresh_extension, monkeypatch):
    (fresh_extension / built_library.name).write_bytes(built_library.read_bytes())  # whole, but unchecked
    monkeypatch.setattr(extension, "_compiler", lambda: "false")  # a "compiler" that always fails
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert extension.kernels("float64") is None
    X, y = make_data(30, 2)
    p = make_params(2, 3)
    torch.testing.assert_close(tanhnet_loss(X, *p, y), REFERENCE(X, *p, y), rtol=1e-12, atol=0)


def unusable_cache(kind: str, tmp_path: Path) -> dict[str, str]:
    """Environment settings under which the kernel cache folder cannot be created or written."""
    (tmp_path / "a-file").write_text("")
    if kind == "regular-file":
        return {"TORCH_TANHNET_CACHE": str(tmp_path / "a-file")}
    if kind == "under-a-file":
        return {"TORCH_TANHNET_CACHE": str(tmp_path / "a-file" / "cache")}
    if kind == "proc":
        return {"TORCH_TANHNET_CACHE": "/proc/nope"}
    if kind == "long-name":
        return {"TORCH_TANHNET_CACHE": str(tmp_path / ("x" * 300))}
    if kind == "home-under-a-file":  # no TORCH_TANHNET_CACHE, no XDG_CACHE_HOME: ~/.cache/torch_tanhnet
        return {"HOME": str(tmp_path / "a-file" / "home")}
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["regular-file", "under-a-file", "proc", "long-name", "home-under-a-file"])
def test_an_unusable_kernel_cache_falls_back_to_torch_ops_after_one_warning(fresh_extension, monkeypatch, kind):
    if kind == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    monkeypatch.delenv("TORCH_TANHNET_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for k, v in unusable_cache(kind, fresh_extension).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(extension, "_compiler", lambda: "cc")  # as if a compiler were there: the cache fails first
    with pytest.warns(RuntimeWarning, match="fused CPU kernels are unavailable .*kernel cache"):
        assert extension.kernels("float32") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once
        assert extension.kernels("float64") is None
        X, y = make_data(30, 2)
        p = make_params(2, 3)
        torch.testing.assert_close(tanhnet_loss(X, *p, y), REFERENCE(X, *p, y), rtol=1e-12, atol=0)


def fake_compiler(path: Path, version: str) -> str:
    """A "compiler" that says ``version`` and fails every build, counting the builds it was asked for."""
    path.write_text(f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi
echo build >> "{path}.builds"
echo "fake: cannot build" >&2
exit 1
""")
    path.chmod(0o755)
    return str(path)


def builds(cc: str) -> int:
    log = Path(cc + ".builds")
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_failed_build_is_tried_again_when_the_compiler_changes(fresh_extension, monkeypatch, tmp_path):
    def attempt(cc):
        monkeypatch.setattr(extension, "_cache", {})
        monkeypatch.setattr(extension, "_warned", False)
        monkeypatch.setattr(extension, "_compiler", lambda: cc)
        with pytest.warns(RuntimeWarning, match="fake: cannot build"):
            assert extension.kernels("float32") is None

    cc = fake_compiler(tmp_path / "cc-a", "fake 1.0")
    attempt(cc)
    attempt(cc)  # the same compiler: the failure is remembered, no second build
    assert builds(cc) == len(extension.ATTEMPTS)
    fake_compiler(tmp_path / "cc-a", "fake 2.0")  # upgraded in place: same path, new version
    attempt(cc)
    assert builds(cc) == 2 * len(extension.ATTEMPTS)
    other = fake_compiler(tmp_path / "cc-b", "fake 2.0")  # another compiler
    attempt(other)
    assert builds(other) == len(extension.ATTEMPTS)
    real = shutil.which("cc") or shutil.which("gcc")
    if real is not None:  # and the system's compiler gets its own try, despite the failures remembered before
        monkeypatch.setattr(extension, "_cache", {})
        monkeypatch.setattr(extension, "_warned", False)
        monkeypatch.setattr(extension, "_compiler", lambda: real)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            lib = extension.kernels("float32")
        assert lib is not None or not any("fake" in str(w.message) for w in seen)


def test_opting_out_with_the_environment(fresh_extension, monkeypatch):
    monkeypatch.setenv("TORCH_TANHNET_NO_EXTENSION", "1")
    with pytest.warns(RuntimeWarning, match="TORCH_TANHNET_NO_EXTENSION is set"):
        assert extension.kernels("float32") is None


BENCH_TINY = ["--sizes", "64", "--rounds", "1", "--min-time", "0.001"]  # one size: compiling is slow


def test_bench_script_smoke(tmp_path, capsys):
    # in this process (tests/test_console.py runs bench.py as a process); JAX, which would stay imported in this
    # process and warn at the later tests' forks, in a process of its own below
    out = tmp_path / "bench.json"
    assert load_script("bench").main([*BENCH_TINY, "--no-jax", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "vs eager" in printed and "torch " + torch.__version__ in printed
    data = json.loads(out.read_text())
    cases = {(row["n"], row["case"]) for row in data["results"]}
    assert {(64, c) for c in ("fused", "composed", "eager", "compiled", "floor")} <= cases
    eager = [row for row in data["results"] if row["case"] == "eager"]
    assert all(row["ratio"] == 1.0 and row["median_ms"] > 0 for row in eager)
    assert all(len(row["samples_ms"]) == 1 for row in data["results"] if row["median_ms"] is not None)  # --rounds 1
    fused = [row for row in data["results"] if row["case"] == "fused"]
    # references to its float32 inputs: X (n, 2) and y (n, 1), 12 bytes a sample, and U, b, W, c (52 bytes);
    # beyond them only the 13 gradient numbers (52 bytes): nothing of size N is computed for backward
    assert all(row["saved_bytes"] <= 12 * row["n"] + 52 + 52 for row in fused)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install -e .[bench])")
def test_bench_script_times_jax_beside_torch(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), *BENCH_TINY, "--no-compile", "--no-memory",
                        "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {row["case"]: row for row in json.loads(out.read_text())["results"]}
    assert rows["jax"]["median_ms"] > 0 and rows["eager"]["ratio"] == 1.0


def test_bench_table_marks_figures_from_widely_spread_repeats():
    from torch_tanhnet.benchmark import UNRELIABLE, Report, Result

    steady = [1.00, 1.05, 1.02]  # spread 1.05
    shaky = [1.0, 3.7, 1.1]  # spread 3.7: another process took the cores during the run
    report = Report("cpu", {}, [
        Result(256, "fused", 0.1, 10.0, samples_ms=[0.1, 0.101, 0.1]),
        Result(256, "eager", 1.0, 1.0, samples_ms=steady),
        Result(256, "floor", 0.05, 20.0, samples_ms=[0.05, 0.2, 0.06]),
        Result(1000, "fused", 0.2, 5.0, samples_ms=[0.2, 0.21]),
        Result(1000, "eager", 1.0, 1.0, samples_ms=shaky),
    ])
    rows = {(line.split()[0], line.split()[1]): line for line in report.table().splitlines()[2:]}
    assert "?" not in rows["256", "fused"] and "UNRELIABLE" not in rows["256", "fused"]
    assert "?" not in rows["256", "eager"]
    assert "0.0500?" in rows["256", "floor"] and "20.00x?" in rows["256", "floor"]
    assert "UNRELIABLE: repeats spread 4.0x" in rows["256", "floor"]
    # a steady case measured against a shaky eager: its own figure stands, its ratio does not
    assert "0.2000 " in rows["1000", "fused"] and "5.00x?" in rows["1000", "fused"]
    assert "eager's repeats spread 3.7x" in rows["1000", "fused"]
    assert "1.0000?" in rows["1000", "eager"] and "1.00x " in rows["1000", "eager"]
    assert report.results[0].spread < UNRELIABLE < report.results[4].spread
    assert json.loads(report.to_json())["results"][4]["spread"] == pytest.approx(3.7)


def test_one_stray_repeat_among_five_or_more_does_not_make_a_figure_unreliable():
    from torch_tanhnet.benchmark import UNRELIABLE, Result

    quiet = [1.0, 1.02, 1.9, 1.01, 0.98, 1.03, 1.0, 0.99, 1.01]  # one slow repeat, as on a quiet machine
    assert Result(256, "eager", 1.0, 1.0, samples_ms=quiet).spread == pytest.approx(1.03 / 0.99)
    contended = [1.0, 5.1, 1.02, 4.8, 0.99, 5.3, 1.01, 1.0, 4.9]  # another process on a core, now and then
    assert Result(256, "eager", 1.0, 1.0, samples_ms=contended).spread > UNRELIABLE
    assert Result(256, "eager", 1.0, 1.0, samples_ms=[1.0, 1.9, 1.0, 1.0]).spread == pytest.approx(1.9)  # < 5
