"""Tensors whose memory the kernels cannot read, and ops inside a dispatch mode, run the reference's torch ops, on
every path.

A FakeTensor (``FakeTensorMode``: shape and memory dry runs, tracing tools) reports device cpu, and a wrapper
subclass (``__torch_dispatch__``: the pattern of DTensor and quantized-tensor libraries) holds its data in other
tensors; both have data pointers that lead to no memory of theirs. Handed to the C kernels they crashed the
process (SIGSEGV). Now they take the reference path, whose torch ops every tensor type defines. Inside a
``TorchDispatchMode`` (make_fx, FakeTensorMode, FlopCounterMode, a logging mode) every op must pass through the
mode: the kernels went round it (make_fx recorded only their empty outputs and replayed uninitialised memory).
"""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.testing._internal.two_tensor import TwoTensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from torch_tanhnet import TanhNet, TanhNetEnsemble, bce_with_logits, tanhnet, tanhnet_loss

TOL = dict(rtol=1e-12, atol=1e-12)
K = 3

# every public path of one network and of an ensemble: (name, f(module, X, y))
SINGLE = [
    ("forward", lambda m, X, y: m(X)),
    ("forward_with_hidden", lambda m, X, y: m.forward_with_hidden(X)[1]),
    ("loss", lambda m, X, y: m.loss(X, y)),
    ("predict_proba", lambda m, X, y: m.predict_proba(X)),
    ("bce_with_logits", lambda m, X, y: bce_with_logits(m(X), y)),
    ("tanhnet", lambda m, X, y: tanhnet(X, m.U, m.b, m.W, m.c)),
    ("tanhnet_loss", lambda m, X, y: tanhnet_loss(X, m.U, m.b, m.W, m.c, y)),
]
ENSEMBLE = [
    ("ensemble forward", lambda m, X, y: m(X)),
    ("ensemble loss", lambda m, X, y: m.loss(X, y)),
]
PATHS = [(n, f, False) for n, f in SINGLE] + [(n, f, True) for n, f in ENSEMBLE]
IDS = [p[0] for p in PATHS]


def build(ensemble: bool):
    torch.manual_seed(0)
    return TanhNetEnsemble(K, dtype=torch.float64) if ensemble else TanhNet(dtype=torch.float64)


def data():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(20, 2, generator=g, dtype=torch.float64)
    return X, (torch.rand(20, 1, generator=g, dtype=torch.float64) > 0.5).double()


@pytest.mark.parametrize("no_grad", [False, True])
@pytest.mark.parametrize("name, f, ensemble", PATHS, ids=IDS)
def test_fake_tensors_give_the_shapes_of_real_ones(name, f, ensemble, no_grad):
    real_X, real_y = data()
    want = f(build(ensemble), real_X, real_y)
    with FakeTensorMode():
        m, (X, y) = build(ensemble), data()
        with torch.set_grad_enabled(not no_grad):
            out = f(m, X, y)
            if out.requires_grad:
                out.sum().backward()
                assert m.U.grad.shape == m.U.shape
    assert type(out).__name__ == "FakeTensor" and out.shape == want.shape and out.dtype == want.dtype


@pytest.mark.parametrize("where", ["X", "parameters"])
@pytest.mark.parametrize("name, f, ensemble", PATHS, ids=IDS)
def test_wrapper_subclasses_give_the_numbers_of_plain_tensors(name, f, ensemble, where):
    m, (X, y) = build(ensemble), data()
    want = f(m, X, y)
    want_grad = torch.autograd.grad(want.sum(), m.U)[0]
    if where == "X":
        X = TwoTensor(X, X.clone())
    else:
        with torch.no_grad():
            for n in "UbWc":
                p = m._parameters[n]
                m._parameters[n] = torch.nn.Parameter(TwoTensor(p.clone(), p.clone()))
    out = f(m, X, y)
    grad = torch.autograd.grad(out.sum(), m.U)[0]
    assert isinstance(out, TwoTensor)
    for got, expected in ((out, want), (grad, want_grad)):
        torch.testing.assert_close(got.a, expected, **TOL)
        torch.testing.assert_close(got.b, expected, **TOL)


class OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name, f, ensemble", PATHS, ids=IDS)
def test_every_op_passes_through_an_active_dispatch_mode(name, f, ensemble):
    m, (X, y) = build(ensemble), data()
    want = f(m, X, y)
    want_grad = torch.autograd.grad(want.sum(), m.U)[0]
    with OpLog() as log:
        out = f(m, X, y)
        grad = torch.autograd.grad(out.sum(), m.U)[0]
    assert any("tanh" in op for op in log.ops), log.ops  # the network's maths, not a kernel's empty outputs
    torch.testing.assert_close(out, want, **TOL)
    torch.testing.assert_close(grad, want_grad, **TOL)
    with FlopCounterMode(display=False) as flops:
        f(m, X, y).sum().backward()
    assert flops.get_total_flops() > 0
    X2, y2 = data()
    X2 = X2 * 2
    traced = make_fx(lambda X_, y_: f(m, X_, y_))(X, y)
    torch.testing.assert_close(traced(X2, y2), f(m, X2, y2), **TOL)


@pytest.mark.parametrize("name, f, ensemble", PATHS, ids=IDS)
def test_real_tensors_under_fake_tensor_mode_do_not_reach_the_kernels(name, f, ensemble):
    """FakeTensorMode(allow_non_fake_inputs=True), as memory estimators use it: real tensors come in, and a
    non-contiguous one's contiguous() is a fake tensor without memory (the kernels read address 0: SIGSEGV)."""
    m, (X, y) = build(ensemble), data()
    X = torch.cat([X, X], 1)[:, ::2]  # non-contiguous
    want = f(m, X, y)
    with FakeTensorMode(allow_non_fake_inputs=True):
        out = f(m, X, y)
    assert out.shape == want.shape
