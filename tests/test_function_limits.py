"""Forward mode inside forward mode (jacfwd(jacfwd), jvp of a jvp): every public path equals nn.Sequential.

PyTorch drops a custom Function's tangents of tangents (pytorch/pytorch#197867): jacfwd(jacfwd) of the network
read 0. The public paths run the reference's forward as torch ops there; the Functions' own jvp refuses it.
"""

import pytest
import torch
import torch.nn.functional as F
from conftest import loss_with, make_data
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call, hessian, jacfwd, jacrev, jvp, vmap

from torch_tanhnet import (
    BCEWithLogitsFunction,
    TanhNet,
    TanhNetEnsemble,
    TanhNetFunction,
    bce_with_logits,
    reference_equations,
    tanhnet,
    tanhnet_loss,
)
from torch_tanhnet.context import nested_forward
from torch_tanhnet.ensemble import EnsembleBCEFunction, EnsembleFunction

SEQ = {"U": "0.weight", "b": "0.bias", "W": "2.weight", "c": "2.bias"}  # TanhNet's names in the Sequential


def problem(N, D, H, seed=0):
    """A float64 TanhNet with nonzero biases, its nn.Sequential twin, data and soft labels."""
    torch.manual_seed(seed)
    model = TanhNet(D, H, dtype=torch.float64)
    with torch.no_grad():
        model.b.normal_()
        model.c.normal_()
    X, y = make_data(N, D, seed=seed + 1)
    return model, model.to_sequential(), X, y


def same(mine, theirs):
    leaves = torch.utils._pytree.tree_leaves
    for a, b in zip(leaves(mine), leaves(theirs), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def second(f, args, t1, t2):
    """The second directional derivative d²f[t1, t2] as a jvp of a jvp."""
    return jvp(lambda *a: jvp(f, a, t1)[1], args, t2)[1]


def randoms(tensors, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(t.shape, generator=g, dtype=t.dtype) for t in tensors)


def plain_network(X, U, b, W, c):
    return torch.tanh(X @ U.t() + b) @ W.t() + c


@pytest.mark.parametrize("N,D,H", [(1, 2, 3), (5, 2, 3), (4, 3, 5)])
def test_input_hessian_by_jacfwd_of_jacfwd_equals_the_sequential(N, D, H):
    model, seq, X, _ = problem(N, D, H)
    x = X[0]
    mine = jacfwd(jacfwd(lambda x: model(x).squeeze(-1)))(x)
    assert mine.abs().max() > 1e-3  # what PyTorch's bug gave was 0
    same(mine, jacfwd(jacfwd(lambda x: seq(x).squeeze(-1)))(x))
    same(mine, jacrev(jacrev(lambda x: model(x).squeeze(-1)))(x))


def test_a_laplacian_over_a_batch_equals_the_sequential():
    """A PINN's Δz at each sample: vmap of the trace of jacfwd(jacfwd)."""
    model, seq, X, _ = problem(6, 2, 3)

    def laplacian(f):
        return vmap(lambda x: torch.diagonal(jacfwd(jacfwd(f))(x)).sum())(X)

    mine = laplacian(lambda x: model(x).squeeze(-1))
    assert mine.abs().max() > 1e-3
    same(mine, laplacian(lambda x: seq(x).squeeze(-1)))


@settings(max_examples=8, deadline=None)
@given(N=st.integers(1, 5), D=st.integers(1, 3), H=st.integers(1, 4), seed=st.integers(0, 99))
def test_second_directional_derivatives_of_each_public_function(N, D, H, seed):
    """jvp of jvp in random directions of every input (X and the parameters; z and y for the cost)."""
    model, _, X, y = problem(N, D, H, seed)
    args = (X, *(p.detach() for p in model.parameters()))
    t1, t2 = randoms(args, seed + 1), randoms(args, seed + 2)
    same(second(tanhnet, args, t1, t2), second(plain_network, args, t1, t2))
    want = second(lambda *a: F.binary_cross_entropy_with_logits(plain_network(*a), y), args, t1, t2)
    same(second(lambda *a: tanhnet_loss(*a, y), args, t1, t2), want)
    same(second(lambda *a: bce_with_logits(tanhnet(*a), y), args, t1, t2), want)
    z = plain_network(*args).detach()
    zy, s1, s2 = (z, y), randoms((z, y), seed + 3), randoms((z, y), seed + 4)
    same(second(bce_with_logits, zy, s1, s2), second(F.binary_cross_entropy_with_logits, zy, s1, s2))


@pytest.mark.parametrize("reference", [False, True])
def test_the_parameter_hessian_by_forward_over_forward_equals_the_sequential(reference):
    model, seq, X, y = problem(5, 2, 3)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_mine(p):  # the training path, model.loss
        return loss_with(model, p, X, y)

    def loss_seq(p):
        return F.binary_cross_entropy_with_logits(functional_call(seq, {SEQ[k]: v for k, v in p.items()}, (X,)), y)

    with reference_equations(reference):
        mine = jacfwd(jacfwd(loss_mine))(params)
    same(mine, jacfwd(jacfwd(loss_seq))(params))
    same(mine, hessian(loss_seq)(params))


def test_torch_bce_after_the_model_under_jacfwd_of_jacfwd():
    """F.binary_cross_entropy_with_logits after the model: the dropped term had torch raise 'ZeroTensors are
    immutable' here."""
    model, seq, X, y = problem(4, 2, 3)
    x = X[0]

    def cost(f):
        return lambda x: F.binary_cross_entropy_with_logits(f(x), y[0])

    same(jacfwd(jacfwd(cost(model)))(x), jacfwd(jacfwd(cost(seq)))(x))


def test_third_derivatives_by_forward_mode():
    model, seq, X, _ = problem(3, 2, 3)
    x = X[1]
    mine = jacfwd(jacfwd(jacfwd(lambda x: model(x).squeeze(-1))))(x)
    same(mine, jacfwd(jacfwd(jacfwd(lambda x: seq(x).squeeze(-1))))(x))
    same(mine, jacrev(jacfwd(jacrev(lambda x: model(x).squeeze(-1))))(x))


def test_the_ensemble_under_jacfwd_of_jacfwd_equals_each_network():
    torch.manual_seed(0)
    ens = TanhNetEnsemble(3, 2, 4, dtype=torch.float64)
    with torch.no_grad():
        ens.b.normal_()
        ens.c.normal_()
    X, y = make_data(5, 2)
    x = X[2]
    z = jacfwd(jacfwd(lambda x: ens(x.unsqueeze(0)).reshape(-1)))(x)  # (K, D, D)
    params = {k: v.detach() for k, v in ens.named_parameters()}
    eps = jacfwd(jacfwd(lambda p: loss_with(ens, p, X, y)))(params)  # each network's ∂²ε_k/∂θ∂θ'
    for k, net in enumerate(ens.to_modules()):
        seq = net.to_sequential()
        same(z[k], jacfwd(jacfwd(lambda x, seq=seq: seq(x).squeeze(-1)))(x))
        p = {n: v.detach() for n, v in net.named_parameters()}

        def loss_seq(p, seq=seq):
            return F.binary_cross_entropy_with_logits(functional_call(seq, {SEQ[n]: v for n, v in p.items()}, (X,)),
                                                      y)

        want = hessian(loss_seq)(p)
        for a in p:
            for b in p:
                block = eps[a][b][k].select(0, k).select(params[a].dim() - 1, k)  # network k's own parameters
                same(block, want[a][b])


def test_one_forward_level_still_runs_the_hand_written_jvp(monkeypatch):
    """Only nesting goes round the Function: a single jvp is the handout's tangent equations."""
    model, _, X, _ = problem(4, 2, 3)
    calls = []
    original = TanhNetFunction.tangent_equations

    def counted(*args):
        calls.append(nested_forward())
        return original(*args)

    monkeypatch.setattr(TanhNetFunction, "tangent_equations", staticmethod(counted))
    jvp(model, (X,), randoms([X], 1))
    jacfwd(lambda x: model(x).squeeze(-1))(X[0])
    jacfwd(jacrev(lambda x: model(x).squeeze(-1)))(X[0])  # forward over reverse: one forward level
    assert calls and not any(calls)
    calls.clear()
    jacfwd(jacfwd(lambda x: model(x).squeeze(-1)))(X[0])
    assert calls == []  # nested: the forward's torch ops, not the Function


@pytest.mark.parametrize("name", ["network", "cost", "ensemble", "ensemble cost"])
def test_the_functions_themselves_refuse_forward_over_forward(name):
    """Called directly (not through the public functions), the Functions would answer wrong: one line instead."""
    model, _, X, y = problem(3, 2, 3)
    args = (X, *(p.detach() for p in model.parameters()))
    cases = {
        "network": (lambda *a: TanhNetFunction.apply(*a)[0], args),
        "cost": (BCEWithLogitsFunction.apply, (plain_network(*args).detach(), y)),
        "ensemble": (lambda X, *p: EnsembleFunction.apply(X, *(t.unsqueeze(0) for t in p))[0], args),
        "ensemble cost": (EnsembleBCEFunction.apply, (plain_network(*args).detach()[None], y[None])),
    }
    f, a = cases[name]
    jvp(f, a, randoms(a, 1))  # one level: fine
    with pytest.raises(RuntimeError, match=r"pytorch/pytorch#197867") as e:
        second(f, a, randoms(a, 1), randoms(a, 2))
    assert "\n" not in str(e.value)


def test_torch_func_transforms_inside_torch_compile():
    """torch.compile(vmap(model)) and the transforms built on vmap (jacfwd, hessian) ended in Dynamo's
    InternalTorchDynamoError (it cannot vmap a captured Function, pytorch/pytorch#129845): they run the forward's
    ops there, under fullgraph=True, equal to the Sequential in eager."""
    model, seq, X, _ = problem(5, 2, 3)
    x = X[0]
    ens = TanhNetEnsemble.from_modules([model, model])

    def scalar(f):
        return lambda x: f(x).squeeze(-1)

    cases = {
        "vmap over samples": (lambda f: vmap(f)(X), model, seq),
        "jacfwd": (lambda f: jacfwd(scalar(f))(x), model, seq),
        "hessian": (lambda f: hessian(scalar(f))(x), model, seq),
        "jacfwd of jacfwd": (lambda f: jacfwd(jacfwd(scalar(f)))(x), model, seq),
        "the ensemble under vmap": (lambda f: vmap(f)(X.unsqueeze(1)).squeeze(), ens, lambda x: seq(x).expand(2, 1)),
    }
    for name, (transform, mine, theirs) in cases.items():
        torch._dynamo.reset()
        got = torch.compile(lambda: transform(mine), fullgraph=True, backend="eager")()
        same(got, transform(theirs))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_at_z_zero_exactly_every_route_differentiates_the_cost_right():
    """z = 0 exactly (b = c = 0 at initialisation and a sample at the origin): where torch differentiates the cost's
    line itself (nested forward mode, transforms under compile, jit.trace), abs(z) and max(z, 0) put their kinks
    there and autograd read ∂L/∂z = 1 − y for σ(0) − y = 1/2 − y, ∂²L/∂z² = 0 for 1/4."""
    y = torch.tensor([[1.0], [0.0], [1.0], [0.0]], dtype=torch.float64)
    z = torch.zeros(4, 1, dtype=torch.float64)
    N = len(y)
    first = (0.5 - y) / N  # ∂ε/∂z_i = (σ(0) − y_i)/N
    second = torch.diag(torch.full((N,), 0.25 / N, dtype=torch.float64))  # ∂²ε/∂z_i∂z_j = σ'(0)/N on the diagonal
    from torch_tanhnet.cost import sample_costs

    leaf = z.clone().requires_grad_(True)
    torch.testing.assert_close(torch.autograd.grad(sample_costs(leaf, y).mean(), leaf)[0], first)
    same(jacfwd(lambda z: bce_with_logits(z, y))(z), first)
    same(jacfwd(jacfwd(lambda z: bce_with_logits(z, y)))(z).reshape(N, N), second)
    same(jacrev(jacrev(lambda z: bce_with_logits(z, y)))(z).reshape(N, N), second)
    traced = torch.jit.trace(lambda z: bce_with_logits(z, y), (z,))
    leaf = z.clone().requires_grad_(True)
    torch.testing.assert_close(torch.autograd.grad(traced(leaf), leaf)[0], first)
    torch._dynamo.reset()
    compiled = torch.compile(torch.func.grad(lambda z: bce_with_logits(z, y)), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(z), first)


def test_a_network_at_its_initial_zero_biases_with_a_sample_at_the_origin():
    """TanhNet starts with b = c = 0, so a sample at the origin has z = 0 exactly: ∂ε/∂c and ∂²ε/∂c² through
    forward over forward and compiled grad equal the Sequential's."""
    torch.manual_seed(0)
    model = TanhNet(2, 3, dtype=torch.float64)
    seq = model.to_sequential()
    X = torch.tensor([[0.0, 0.0], [0.5, -1.0], [0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0], [0.0], [0.0]], dtype=torch.float64)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_mine(p):
        return loss_with(model, p, X, y)

    def loss_seq(p):
        return F.binary_cross_entropy_with_logits(functional_call(seq, {SEQ[k]: v for k, v in p.items()}, (X,)), y)

    same(jacfwd(jacfwd(loss_mine))(params), hessian(loss_seq)(params))
    torch._dynamo.reset()
    compiled = torch.compile(torch.func.grad(lambda p: tanhnet_loss(X, p["U"], p["b"], p["W"], p["c"], y)),
                             fullgraph=True, backend="aot_eager")
    same(compiled(params), torch.func.grad(loss_seq)(params))


def test_dual_numbers_through_a_model_inside_torch_compile():
    """Dual numbers through a model whose parameters require grad, inside a compiled function: the jvp-free compile
    twins raised "You must implement the jvp function" (a test with detached parameters passed); the forward's
    torch ops run, with fullgraph=True, equal to the Sequential in eager."""
    import torch.autograd.forward_ad as fwAD

    model, seq, X, y = problem(5, 2, 3)
    T = randoms([X], 4)[0]
    ens = TanhNetEnsemble.from_modules([model, model])

    def dual(f):
        def tangent(X):
            with fwAD.dual_level():
                return fwAD.unpack_dual(f(fwAD.make_dual(X, T))).tangent
        return tangent

    for mine, theirs in ((model, seq), (lambda X: model.loss(X, y), lambda X: F.binary_cross_entropy_with_logits(
            seq(X), y)), (lambda X: ens(X)[1], seq)):
        torch._dynamo.reset()
        same(torch.compile(dual(mine), fullgraph=True, backend="eager")(X), dual(theirs)(X))
