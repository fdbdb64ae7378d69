"""TorchScript: torch.jit.script and torch.jit.trace give modules that save, load and train the original's weights."""

import io
import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import make_data
from torch import nn

from torch_tanhnet import TanhNet, TanhNetEnsemble

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

    def cost(z):
        return F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").mean(dim=(-2, -1))

    for mine, theirs in zip(gradients(model, cost(scripted(X))), gradients(model, model.loss(X, y)), strict=True):
        torch.testing.assert_close(mine, theirs, **close)  # the scripted module's gradients land on model's
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
    Xk = X.expand(3, -1, -1).contiguous()
    torch.testing.assert_close(ens(Xk), m["TanhNetEnsemble"](Xk), rtol=1e-12, atol=1e-14)  # one X per network


def test_scripting_a_larger_model_leaves_the_users_modules_as_they_were():
    """torch.jit.script writes what a submodule's __prepare_scriptable__ returns back into the parent: a twin there
    once replaced the user's own TanhNet in their eager model (no checks, no kernels). Nothing is replaced now."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2), TanhNet(), nn.Sigmoid()).double()
    net = model[1]
    scripted = torch.jit.script(model)
    assert model[1] is net and type(net) is TanhNet
    X = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(scripted(X), model(X), rtol=1e-12, atol=1e-14)


class OwnForward(TanhNet):
    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.tanh(F.linear(X / 10, self.U, self.b)), self.W, self.c)


class PythonForward(TanhNet):
    def forward(self, X):
        return super().forward(X / 10)


def test_a_subclass_is_scripted_by_its_own_forward_or_refused_by_torchscript():
    """A subclass's own forward is what TorchScript compiles (never TanhNet's equations in its place), or, where
    that forward is not TorchScript, TorchScript's own error."""
    X, _ = make_data(5, 2)
    own = OwnForward(dtype=torch.float64)
    torch.testing.assert_close(torch.jit.script(own)(X), own(X), rtol=1e-12, atol=1e-14)
    with pytest.raises(Exception):  # noqa: B017 - TorchScript's own error, whichever it is
        torch.jit.script(PythonForward(dtype=torch.float64))


class Branching(TanhNet):
    def forward(self, X):
        return super().forward(X) if X.sum() > 0 else -super().forward(X)


def test_tracing_hides_only_this_librarys_warnings():
    """The checks' TracerWarnings are hidden; a subclass's data-dependent branch, which the trace fixes, still warns."""
    X, _ = make_data(5, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.trace(Branching(dtype=torch.float64), X)
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    assert tracer and all("torch_tanhnet" not in w.filename for w in tracer), [str(w.message) for w in tracer]


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
