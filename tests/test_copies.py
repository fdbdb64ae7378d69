"""A copy of a network (to_sequential, from_modules, ensemble[k], to_modules) computes what the original does, or
is refused in one line: never a copy of weights that the original's hooks or own forward change.

The hook-based weight_norm, spectral_norm and prune set the weight in a forward pre-hook, so after an optimizer
step the stored weight is one step behind until the next call: a copy's logits were 0.3 off, silently.
"""

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

from torch_tanhnet import TanhNet, TanhNetEnsemble


class OwnForward(TanhNet):
    def forward(self, X):
        return super().forward(X / 10)


class EnsembleOwnForward(TanhNetEnsemble):
    def forward(self, X):
        return super().forward(X / 10)


def data(n):
    X = torch.randn(n, 2)
    return X, (X[:, :1] * X[:, 1:] > 0).float()


def trained(model, X, y, steps=3):
    """A few SGD steps, without a forward after the last one (as a training loop ends)."""
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(steps):
        opt.zero_grad()
        model.loss(X, y).sum().backward()
        opt.step()
    return model


def altered_networks():
    """TanhNets whose outputs are not their stored weights' (each makes its own: hooks stay on the instance)."""
    def forward_hook():
        m = TanhNet()
        m.register_forward_hook(lambda mod, i, out: out + 5)
        return m

    def pre_hook():
        m = TanhNet()
        m.register_forward_pre_hook(lambda mod, i: (i[0] * 2,))
        return m

    def instance_forward():
        m = TanhNet()
        plain = m.forward
        m.forward = lambda X: plain(X) * 3
        return m

    def pruned():
        m = TanhNet()
        prune.l1_unstructured(m, "U", amount=0.5)
        return m

    with pytest.warns(FutureWarning):
        hook_weight_norm = nn.utils.weight_norm(TanhNet(), "U")
    return {"a forward hook": forward_hook, "a forward pre-hook": pre_hook, "its own forward": OwnForward,
            "a forward set on it": instance_forward, "the hook-based weight_norm": lambda: hook_weight_norm,
            "prune": pruned, "spectral_norm": lambda: nn.utils.spectral_norm(TanhNet(), "U")}


def one_line(error, where):
    assert "\n" not in str(error.value) and str(error.value).startswith(where), str(error.value)


@pytest.mark.parametrize("kind", list(altered_networks()))
def test_a_network_that_computes_otherwise_is_not_copied(kind):
    torch.manual_seed(0)
    X, y = data(20)
    net = trained(altered_networks()[kind](), X, y)
    with pytest.raises(ValueError) as e:
        net.to_sequential()
    one_line(e, "to_sequential: ")
    with pytest.raises(ValueError) as e:
        TanhNetEnsemble.from_modules([TanhNet(), net])
    one_line(e, "from_modules, network 1: ")


def test_an_ensemble_that_computes_otherwise_is_not_copied():
    X, y = data(20)
    hooked = TanhNetEnsemble(3)
    hooked.register_forward_hook(lambda mod, i, out: out + 5)
    with pytest.warns(FutureWarning):
        normed = nn.utils.weight_norm(TanhNetEnsemble(3), "W")
    for ens in (hooked, EnsembleOwnForward(3), trained(normed, X, y)):
        for copy, name in ((lambda e: e[1], "ensemble[k]"), (lambda e: e[[0, 2]], "ensemble[k]"),
                           (lambda e: e[1:], "ensemble[k]"), (lambda e: e.to_modules(), "to_modules")):
            with pytest.raises(ValueError) as e:
                copy(ens)
            one_line(e, f"{name}: ")


def test_parametrized_weights_copy_as_they_compute():
    """torch.nn.utils.parametrizations computes the weight when it is read: a copy after training equals the
    original's outputs."""
    torch.manual_seed(0)
    X, y = data(30)
    net = trained(nn.utils.parametrizations.weight_norm(TanhNet(), "U"), X, y)
    with torch.no_grad():
        want = net(X)
        torch.testing.assert_close(net.to_sequential()(X), want)
        torch.testing.assert_close(TanhNetEnsemble.from_modules([net])(X)[0], want)
    ens = trained(nn.utils.parametrizations.weight_norm(TanhNetEnsemble(3), "W"), X, y)
    with torch.no_grad():
        want = ens(X)
        for k, net in enumerate(ens.to_modules()):
            torch.testing.assert_close(net(X), want[k])
        torch.testing.assert_close(ens[[2, 0]](X), want[[2, 0]])


class OwnCall(TanhNet):
    def __call__(self, X):
        return super().__call__(X) + 1


class OwnWeights(TanhNet):
    def _weights(self):
        U, b, W, c = super()._weights()
        return U * 2, b, W, c


def test_other_ways_to_compute_otherwise_are_refused_or_copied_as_computed():
    """A subclass's own __call__ (or _call_impl set on the instance) is refused as its own forward is; a subclass
    that computes its weights (_weights) is copied with the weights it computes, by from_modules as by
    to_sequential. to_modules names itself."""
    X, y = data(10)
    impl = TanhNet()
    plain = impl._call_impl
    impl._call_impl = lambda *a, **k: plain(*a, **k) * 2
    for net in (OwnCall(), impl):
        with pytest.raises(ValueError, match="its own forward"):
            net.to_sequential()
        assert torch.allclose(net.loss(X, y), nn.functional.binary_cross_entropy_with_logits(net(X), y))
    doubled = OwnWeights()
    with torch.no_grad():
        torch.testing.assert_close(TanhNetEnsemble.from_modules([doubled])(X)[0], doubled.to_sequential()(X))
        torch.testing.assert_close(TanhNetEnsemble.from_modules([doubled])(X)[0], doubled(X))
    hooked = TanhNetEnsemble(2)
    hooked.register_forward_hook(lambda mod, i, out: out + 5)
    with pytest.raises(ValueError, match=r"^to_modules: "):
        hooked.to_modules()
