"""loss() runs what model(X) runs: with hooks on the module (forward pre-hooks, forward hooks, full backward hooks,
global ones, and the hook-based spectral_norm, weight_norm and prune) it is BCEWithLogitsLoss(model(X), y) through
Module.__call__; a parametrized ensemble's loss_and_grad reaches the parametrization's parameters. Before, the fused
pass read the parameters directly: hooks did not run, spectral norm's U never trained, prune and weight_norm failed
at the second step, and loss_and_grad set the gradient on the parametrization's computed tensor."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize, prune

from torch_tanhnet import TanhNet, TanhNetEnsemble, hessian

N = 48


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, 2, generator=g, dtype=dtype)
    return X, (X[:, :1] * X[:, 1:] > 0).to(dtype)


def register(module, kind, calls):
    if kind == "forward_pre":  # one that changes the input: its effect shows in the loss
        return module.register_forward_pre_hook(lambda m, args: (calls.append(kind), (args[0] * 1.5,))[1])
    if kind == "forward":
        return module.register_forward_hook(lambda m, args, out: (calls.append(kind), out - 0.25)[1])
    if kind == "full_backward":
        return module.register_full_backward_hook(lambda m, gin, gout: calls.append(kind))
    if kind == "global_forward":
        return nn.modules.module.register_module_forward_hook(lambda m, args, out: (calls.append(kind), out + 0.5)[1])
    raise AssertionError(kind)


def make(ensemble):
    torch.manual_seed(0)
    return TanhNetEnsemble(3, dtype=torch.float64) if ensemble else TanhNet(dtype=torch.float64)


def composition(model, X, y):
    z = model(X)
    return F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").mean(dim=(-2, -1))


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # no input needs a gradient: torch says so
@pytest.mark.parametrize("ensemble", [False, True], ids=["TanhNet", "ensemble"])
@pytest.mark.parametrize("kind", ["forward_pre", "forward", "full_backward", "global_forward"])
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
def test_loss_runs_the_modules_hooks_as_model_of_x_does(ensemble, kind, grad):
    X, y = data()
    model, calls = make(ensemble), []
    handle = register(model, kind, calls)
    try:
        with torch.set_grad_enabled(grad):
            eps = model.loss(X, y)
            if grad:
                eps.sum().backward()
        got = (eps.detach(), [p.grad for p in model.parameters()])
        assert kind in calls or (kind == "full_backward" and not grad)  # the hook ran (a backward one: if any)
        model.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(grad):
            expected = composition(model, X, y)
            if grad:
                expected.sum().backward()
    finally:
        handle.remove()
    torch.testing.assert_close(got[0], expected.detach().reshape(got[0].shape), rtol=1e-12, atol=1e-12)
    for a, b in zip(got[1], (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    if ensemble and grad and kind != "full_backward":  # loss_and_grad: the same composition, the same gradients
        model.zero_grad(set_to_none=True)
        handle = register(model, kind, calls)
        try:
            eps = model.loss_and_grad(X, y)
        finally:
            handle.remove()
        torch.testing.assert_close(eps, expected.detach(), rtol=1e-12, atol=1e-12)
        for a, b in zip((p.grad for p in model.parameters()), got[1]):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


REPARAMETRIZATIONS = {
    "spectral_norm": lambda m, name: nn.utils.spectral_norm(m, name),
    "weight_norm": lambda m, name: nn.utils.weight_norm(m, name),
    "prune": lambda m, name: prune.l1_unstructured(m, name, amount=0.5),
}


@pytest.mark.parametrize("how", list(REPARAMETRIZATIONS))
def test_hook_based_reparametrizations_train_as_on_the_sequential(how):
    X, y = data()
    torch.manual_seed(0)
    seq0 = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()

    def train(model, layer, name, cost):
        torch.manual_seed(1)  # spectral_norm draws its power-iteration vector from the global generator
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # weight_norm's deprecation
            REPARAMETRIZATIONS[how](layer, name)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        losses = []
        for _ in range(5):
            opt.zero_grad()
            loss = cost(model)
            losses.append(loss.item())
            loss.backward()
            opt.step()
        return losses

    seq = copy.deepcopy(seq0)
    expected = train(seq, seq[0], "weight", lambda m: F.binary_cross_entropy_with_logits(m(X), y))
    net = TanhNet.from_sequential(seq0)
    got = train(net, net, "U", lambda m: m.loss(X, y))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert len(set(got)) == 5  # it trained


class Scale(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.s = nn.Parameter(torch.full((k, 1, 1), 0.8, dtype=torch.float64))

    def forward(self, U):
        return U * self.s


@pytest.mark.parametrize("how", ["register_parametrization", "weight_norm", "orthogonal"])
def test_a_parametrized_ensembles_loss_and_grad_reaches_the_parametrizations_parameters(how):
    X, y = data()
    model = make(True)
    if how == "register_parametrization":
        parametrize.register_parametrization(model, "U", Scale(3))
    elif how == "weight_norm":
        nn.utils.parametrizations.weight_norm(model, "U", dim=0)
    else:
        model = TanhNetEnsemble(3, 2, 2, dtype=torch.float64)  # square U (K, 2, 2): orthogonal per network
        nn.utils.parametrizations.orthogonal(model, "U")
    model.loss(X, y).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    model.loss_and_grad(X, y)
    got = {n: p.grad for n, p in model.named_parameters()}
    assert set(got) == set(expected) and any("parametrizations" in n for n in got)
    for n in expected:
        assert got[n] is not None, n
        torch.testing.assert_close(got[n], expected[n], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ensemble", [False, True], ids=["TanhNet", "ensemble"])
def test_a_float64_x_on_a_float32_model_is_told_about_x_not_y(ensemble):
    """Told first that y must be float64 (X's dtype), a user who converted y was then told about X."""
    model = TanhNetEnsemble(2) if ensemble else TanhNet()
    X, y = data()
    with pytest.raises(TypeError, match="X has dtype torch.float64 but"):
        model.loss(X, y.float())


def test_the_hessian_refuses_a_model_with_hooks_in_one_line():
    """hessian() takes the network's own equations: with a forward hook, or prune's pre-hook, it gave the Hessian of
    another cost than loss()'s (0.35 off), or of the weights the last forward left."""
    from torch_tanhnet import hessian, hessian_eigenvalues

    X, y = data()
    net = make(False)
    handle = net.register_forward_hook(lambda m, args, out: out * 2)
    for f in (hessian, hessian_eigenvalues):
        with pytest.raises(ValueError, match="this TanhNet has hooks") as e:
            f(net, X, y)
        assert "\n" not in str(e.value)
    handle.remove()
    assert hessian(net, X, y).shape == (13, 13)  # and without them, as before


@pytest.mark.parametrize("how", ["flattened", "float32", "tuple"])
def test_a_forward_hook_that_changes_the_logits_is_named_in_one_line(how):
    X, y = data()
    change = {"flattened": lambda z: z.reshape(-1), "float32": lambda z: z.float(), "tuple": lambda z: (z, z)}[how]
    for model in (make(False), make(True)):
        model.register_forward_hook(lambda m, args, out: change(out))
        calls = [model.loss] + ([model.loss_and_grad] if isinstance(model, TanhNetEnsemble) else [])
        for call in calls:
            with pytest.raises((TypeError, ValueError)) as e:
                call(X, y)
            message = str(e.value)
            assert "\n" not in message and ("forward hook" in message or "z" in message or "logits" in message), message
            assert "parameters' dtype" not in message  # it is the logits' dtype that differs from y's


class Scaled(TanhNet):  # a subclass with its own forward
    def forward(self, X):
        return super().forward(X / 10)


class Shifted(TanhNet):  # or its own forward_with_hidden, which forward calls
    def forward_with_hidden(self, X):
        return super().forward_with_hidden(X + 1)


class ScaledEnsemble(TanhNetEnsemble):
    def forward(self, X):
        return super().forward(X / 10)


@pytest.mark.parametrize("cls", [Scaled, Shifted])
def test_a_subclass_with_its_own_forward_trains_the_function_it_predicts_with(cls):
    """loss() ran the fused pass of TanhNet's equations on X, while model(X) predicted through the subclass's
    forward: training optimised another function than the one it was judged by (hostile campaign)."""
    torch.manual_seed(0)
    model, X = cls().double(), torch.randn(64, 2, dtype=torch.float64) * 10
    y = (X[:, :1] > 0).double()
    eps = model.loss(X, y)
    reference = F.binary_cross_entropy_with_logits(model(X), y)
    assert torch.allclose(eps, reference, rtol=1e-12, atol=0)
    grads = torch.autograd.grad(eps, list(model.parameters()))
    expected = torch.autograd.grad(reference, list(model.parameters()))
    assert all(torch.allclose(a, b, rtol=1e-12, atol=1e-15) for a, b in zip(grads, expected))
    with pytest.raises(ValueError, match=f"^{cls.__name__} computes its logits with its own forward"):
        hessian(model, X, y)


def test_an_ensemble_subclass_with_its_own_forward_trains_the_function_it_predicts_with():
    torch.manual_seed(0)
    ensemble, X = ScaledEnsemble(3).double(), torch.randn(64, 2, dtype=torch.float64) * 10
    y = (X[:, :1] > 0).double()
    reference = F.binary_cross_entropy_with_logits(ensemble(X), y.expand(3, 64, 1), reduction="none").mean((1, 2))
    assert torch.allclose(ensemble.loss(X, y), reference, rtol=1e-12, atol=0)
    expected = torch.autograd.grad(reference.sum(), list(ensemble.parameters()))
    assert torch.allclose(ensemble.loss_and_grad(X, y), reference, rtol=1e-12, atol=0)
    assert all(torch.allclose(p.grad, g, rtol=1e-12, atol=1e-15) for p, g in zip(ensemble.parameters(), expected))


def test_a_forward_set_on_the_instance_is_what_loss_and_from_sequential_see():
    """model.forward = ... (a monkeypatch, as accelerate wraps forward) went past the subclass check: loss ran the
    fused pass of TanhNet's equations and from_sequential copied a Tanh computing tanh(2x) (a re-probe)."""
    torch.manual_seed(0)
    X = torch.randn(32, 2, dtype=torch.float64) * 5
    y = (X[:, :1] > 0).double()
    model = TanhNet().double()
    inner = model.forward
    model.forward = lambda X: inner(X / 10)
    assert torch.allclose(model.loss(X, y), F.binary_cross_entropy_with_logits(model(X), y), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="^TanhNet computes its logits with its own forward"):
        hessian(model, X, y)
    ensemble = TanhNetEnsemble(3).double()
    outer = ensemble.forward
    ensemble.forward = lambda X: outer(X / 10)
    expected = F.binary_cross_entropy_with_logits(ensemble(X), y.expand(3, 32, 1), reduction="none").mean((1, 2))
    assert torch.allclose(ensemble.loss(X, y), expected, rtol=1e-12, atol=0)
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    seq[1].forward = lambda x: torch.tanh(2 * x)
    with pytest.raises(ValueError, match=r"^\[1\] is a Tanh with its own forward"):
        TanhNet.from_sequential(seq)
