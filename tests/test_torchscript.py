"""TorchScript: torch.jit.script and torch.jit.trace give modules that save, load and train the original's weights."""

import io
import warnings

import pytest
import torch
from conftest import make_data

from torch_tanhnet import TanhNet, TanhNetEnsemble
from torch_tanhnet.scripting import scriptable

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # torch 2.13's, for each jit call


def models():
    torch.manual_seed(0)
    net = TanhNet(2, 3, dtype=torch.float64)
    ens = TanhNetEnsemble(3, 2, 4, dtype=torch.float64)
    with torch.no_grad():
        for m in (net, ens):
            m.b.normal_()
            m.c.normal_()
    return {"TanhNet": net, "TanhNetEnsemble": ens}


def saved_and_loaded(module):
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def gradients(model, loss):
    model.zero_grad()
    loss.sum().backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["TanhNet", "TanhNetEnsemble"])
def test_a_scripted_module_computes_saves_and_trains_the_originals_weights(name):
    model = models()[name]
    X, y = make_data(6, 2)
    scripted = torch.jit.script(model)
    close = dict(rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(scripted(X), model(X), **close)
    torch.testing.assert_close(scripted.predict_proba(X), model.predict_proba(X), **close)
    torch.testing.assert_close(scripted.loss(X, y), model.loss(X, y), **close)
    for mine, theirs in zip(gradients(model, scripted.loss(X, y)), gradients(model, model.loss(X, y)), strict=True):
        torch.testing.assert_close(mine, theirs, **close)  # the scripted loss's gradients land on model's parameters
    with torch.no_grad():
        model.U.mul_(2)  # an optimizer's step on the original is the scripted module's too
    torch.testing.assert_close(scripted(X), model(X), **close)
    loaded = saved_and_loaded(scripted)
    assert [n for n, _ in loaded.named_parameters()] == ["U", "b", "W", "c"]
    torch.testing.assert_close(loaded(X), model(X), **close)


def test_scripted_shapes_as_the_modules_take_them():
    m = models()
    X, y = make_data(6, 2)
    net = torch.jit.script(m["TanhNet"])
    batch = X.reshape(2, 3, 2)
    torch.testing.assert_close(net(batch), m["TanhNet"](batch), rtol=1e-12, atol=1e-14)  # X (*, D)
    ens = torch.jit.script(m["TanhNetEnsemble"])
    Xk, yk = X.expand(3, -1, -1).contiguous(), y.expand(3, -1, -1).contiguous()
    torch.testing.assert_close(ens(Xk), m["TanhNetEnsemble"](Xk), rtol=1e-12, atol=1e-14)  # one X per network
    torch.testing.assert_close(ens.loss(Xk, yk), m["TanhNetEnsemble"].loss(X, y), rtol=1e-12, atol=1e-14)


class OwnForward(TanhNet):
    def forward(self, X):
        return super().forward(X / 10)


def test_a_module_the_twin_would_not_match_is_left_to_torchscript():
    """Hooks, a subclass's forward, a parametrized weight: a twin of the equations would leave them out, so the
    module goes to TorchScript as it is (which then raises its own error)."""
    hooked = TanhNet()
    hooked.register_forward_hook(lambda m, i, o: o * 2)
    parametrized = torch.nn.utils.parametrizations.weight_norm(TanhNet(), "U")
    for module in (hooked, OwnForward(), parametrized):
        assert scriptable(module, TanhNet, object) is module
    with pytest.raises(Exception):  # noqa: B017 - TorchScript's own error, whichever it is
        torch.jit.script(OwnForward())


@pytest.mark.parametrize("name", ["TanhNet", "TanhNetEnsemble"])
def test_a_traced_module_holds_torch_ops_and_saves(name):
    """torch.jit.trace recorded the reference Function as a Python op, which torch.jit.save cannot write ('Could not
    export Python function call'): under tracing the forward's torch ops run; and the input checks' shape
    comparisons no longer warn that the trace 'might not generalize'."""
    model = models()[name]
    X, _ = make_data(6, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(model, X)
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)], caught
    assert not [n for n in traced.graph.nodes() if n.kind() == "prim::PythonOp"]
    loaded = saved_and_loaded(traced)
    torch.testing.assert_close(loaded(X), model(X), rtol=1e-12, atol=1e-14)
    X2, _ = make_data(9, 2, seed=5)
    torch.testing.assert_close(loaded(X2), model(X2), rtol=1e-12, atol=1e-14)
