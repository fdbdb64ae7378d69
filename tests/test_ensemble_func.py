"""torch.func's ensembling idiom over TanhNet: equal to TanhNetEnsemble, run by the batched Function (vmap rule)."""

import pytest
import torch
import torch.nn.functional as F
from conftest import make_data
from torch.func import functional_call, grad, jacrev, stack_module_state, vmap

from torch_tanhnet import TanhNet, TanhNetEnsemble, TanhNetFunction, bce_with_logits
from torch_tanhnet.audit.reference import network_reference

EXACT = dict(rtol=0, atol=1e-12)


def networks(K=4, D=2, H=3):
    torch.manual_seed(0)
    nets = [TanhNet(D, H, dtype=torch.float64) for _ in range(K)]
    with torch.no_grad():
        for n in nets:
            n.b.normal_()
            n.c.normal_()
    return nets


@pytest.mark.parametrize("shared_X", [True, False])
def test_vmap_of_functional_call_equals_the_ensemble(shared_X):
    nets = networks()
    ens = TanhNetEnsemble.from_modules(nets)
    params, buffers = stack_module_state(nets)
    base = TanhNet(2, 3, dtype=torch.float64, device="meta")
    X, y = make_data(9, 2)
    X = X if shared_X else torch.stack([X * (k + 1) for k in range(4)])

    def fmodel(p, b, x):
        return functional_call(base, (p, b), (x,))

    z = vmap(fmodel, in_dims=(0, 0, None if shared_X else 0))(params, buffers, X)
    torch.testing.assert_close(z, ens(X), **EXACT)
    loss = F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").mean(dim=(1, 2))
    torch.testing.assert_close(loss, ens.loss(X, y), **EXACT)
    grads = torch.autograd.grad(loss.sum(), [params[n] for n in "UbWc"])
    ens.loss(X, y).sum().backward()
    for n, g in zip("UbWc", grads):
        torch.testing.assert_close(g, getattr(ens, n).grad, **EXACT)


def test_vmap_rule_runs_the_batched_function():
    nets = networks()
    params, _ = stack_module_state(nets)
    X, _ = make_data(5, 2)
    z = vmap(lambda p, x: TanhNetFunction.apply(x, p["U"], p["b"], p["W"], p["c"])[0], in_dims=(0, None))(params, X)
    assert "Ensemble" in z.grad_fn.name()


@pytest.mark.parametrize("batched", ["U", "b", "W", "c", "X", "XU"])
def test_vmap_rule_with_any_inputs_batched_equals_a_loop(batched):
    g = torch.Generator().manual_seed(1)
    B, N, D, H = 3, 4, 2, 3
    full = {"X": (N, D), "U": (H, D), "b": (H,), "W": (1, H), "c": (1,)}
    args = {k: torch.randn(((B,) if k in batched else ()) + s, generator=g, dtype=torch.float64,
                           requires_grad=True) for k, s in full.items()}
    in_dims = tuple(0 if k in batched else None for k in full)
    z, Hs = vmap(TanhNetFunction.apply, in_dims=in_dims)(*args.values())
    w = torch.randn(B, N, 1, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((w * z).sum() + Hs.sum(), list(args.values()))
    loop = []
    for i in range(B):
        a = [t[i] if k in batched else t for k, t in args.items()]
        _, Hi, zi = network_reference(*a)
        torch.testing.assert_close(z[i], zi, **EXACT)
        torch.testing.assert_close(Hs[i], Hi, **EXACT)
        loop.append((w[i] * zi).sum() + Hi.sum())
    for mine, ref in zip(grads, torch.autograd.grad(sum(loop), list(args.values()))):
        torch.testing.assert_close(mine, ref, **EXACT)


def test_per_network_gradients_from_vmap_of_grad_equal_the_ensemble():
    nets = networks()
    ens = TanhNetEnsemble.from_modules(nets)
    params, _ = stack_module_state(nets)
    params = {k: v.detach() for k, v in params.items()}
    X, y = make_data(7, 2)

    def loss(p, x):
        return bce_with_logits(functional_call(nets[0], p, (x,)), y)

    per_network = vmap(grad(loss), in_dims=(0, None))(params, X)
    ens.loss(X, y).sum().backward()
    for n in "UbWc":
        torch.testing.assert_close(per_network[n], getattr(ens, n).grad, **EXACT)


def test_jacobians_through_the_rule_equal_autograd():
    nets = networks(K=2)
    params, _ = stack_module_state(nets)
    params = {k: v.detach() for k, v in params.items()}
    X, _ = make_data(3, 2)

    def f(U):
        network = vmap(lambda u, b, w, c: TanhNetFunction.apply(X, u, b, w, c)[0])
        return network(U, params["b"], params["W"], params["c"])

    def ref(U):
        return torch.stack([network_reference(X, U[k], params["b"][k], params["W"][k], params["c"][k])[2]
                            for k in range(2)])

    torch.testing.assert_close(jacrev(f)(params["U"]), jacrev(ref)(params["U"]), **EXACT)
