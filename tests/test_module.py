"""TanhNet: a drop-in for Sequential(Linear, Tanh, Linear), both directions, outputs and gradients."""

import re

import pytest
import torch
from torch import nn

from torch_tanhnet import TanhNet, TanhNetEnsemble, bce_with_logits


def sequential(D=2, H=3, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, 1)).to(dtype)


def grads(module):
    return [p.grad for p in module.parameters()]


def test_parameter_names_and_layouts_match_linear():
    net = TanhNet(2, 3)
    assert [n for n, _ in net.named_parameters()] == ["U", "b", "W", "c"]
    seq = sequential(dtype=torch.float32)
    assert [p.shape for p in net.parameters()] == [p.shape for p in seq.parameters()]


@pytest.mark.parametrize("D,H", [(2, 3), (5, 7)])
def test_from_sequential_gives_same_outputs_and_gradients(D, H):
    seq = sequential(D, H)
    net = TanhNet.from_sequential(seq)
    X = torch.randn(4, 6, D, dtype=torch.float64)  # (*, D) with two batch dimensions
    y = torch.rand(4, 6, 1, dtype=torch.float64)
    torch.testing.assert_close(net(X), seq(X), rtol=1e-14, atol=0)
    bce_with_logits(net(X), y).backward()
    torch.nn.functional.binary_cross_entropy_with_logits(seq(X), y).backward()
    for a, b in zip(grads(net), grads(seq)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-16)


def test_to_sequential_gives_same_outputs_and_gradients():
    torch.manual_seed(1)
    net = TanhNet(2, 3, dtype=torch.float64)
    seq = net.to_sequential()
    X = torch.randn(10, 2, dtype=torch.float64)
    torch.testing.assert_close(seq(X), net(X), rtol=1e-14, atol=0)
    seq(X).pow(2).sum().backward()
    net(X).pow(2).sum().backward()
    for a, b in zip(grads(net), grads(seq)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-16)


def test_state_dict_maps_one_to_one():
    seq = sequential()
    net = TanhNet(dtype=torch.float64)
    mapping = {"0.weight": "U", "0.bias": "b", "2.weight": "W", "2.bias": "c"}
    net.load_state_dict({mapping[k]: v for k, v in seq.state_dict().items()})
    torch.testing.assert_close(net.to_sequential().state_dict(), seq.state_dict())


def test_a_sequentials_state_dict_loads_as_it_is_alone_and_inside_a_larger_model():
    """A checkpoint saved before the Sequential was swapped for a TanhNet loads into it: its keys are U, b, W, c."""
    seq = sequential()
    net = TanhNet(dtype=torch.float64)
    loaded = net.load_state_dict(seq.state_dict())
    assert not loaded.missing_keys and not loaded.unexpected_keys
    torch.testing.assert_close(net.to_sequential().state_dict(), seq.state_dict())
    front = nn.Linear(4, 2).double()
    old = nn.Sequential(front, seq)
    new = nn.Sequential(nn.Linear(4, 2).double(), TanhNet(dtype=torch.float64))
    new.load_state_dict(old.state_dict())  # keys 1.0.weight ... as 1.U ...
    X = torch.randn(8, 4, dtype=torch.float64)
    torch.testing.assert_close(new(X), old(X), rtol=1e-12, atol=1e-15)
    assert set(new.state_dict()) == {"0.weight", "0.bias", "1.U", "1.b", "1.W", "1.c"}


def test_a_state_dict_that_is_neither_layout_is_torchs_error():
    """Only all four of a Sequential's keys, and none of TanhNet's, are read so: anything else is torch's own
    error, naming the keys (a partial Sequential is not mixed with U, b, W, c)."""
    seq = sequential().state_dict()
    partial = {k: v for k, v in seq.items() if k != "2.bias"}
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "U", "b", "W", "c"'):
        TanhNet(dtype=torch.float64).load_state_dict(partial)
    mixed = {**seq, "U": seq["0.weight"]}
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "0.weight"'):
        TanhNet(dtype=torch.float64).load_state_dict(mixed)
    with pytest.raises(RuntimeError, match=r"size mismatch for U"):
        TanhNet(2, 4, dtype=torch.float64).load_state_dict(seq)


def test_swaps_in_for_sequential_inside_a_larger_model():
    torch.manual_seed(0)
    front = nn.Linear(4, 2).double()
    seq = sequential()
    model_ref = nn.Sequential(front, seq)
    model = nn.Sequential(front, TanhNet.from_sequential(seq))
    X = torch.randn(8, 4, dtype=torch.float64)
    model_ref(X).sum().backward()
    ref = front.weight.grad.clone()
    front.weight.grad = None
    model(X).sum().backward()  # X̄ flows back into the layer before
    torch.testing.assert_close(front.weight.grad, ref, rtol=1e-12, atol=1e-16)


def test_vector_input_like_linear():
    seq = sequential()
    net = TanhNet.from_sequential(seq)
    x = torch.randn(2, dtype=torch.float64)
    assert net(x).shape == seq(x).shape == (1,)
    torch.testing.assert_close(net(x), seq(x))


def test_from_sequential_rejects_other_architectures():
    with pytest.raises(ValueError, match=r"expected Sequential\(Linear\(D, H\), Tanh\(\), Linear\(H, 1\)\), "
                                         r"got \['Linear', 'ReLU', 'Linear'\]"):
        TanhNet.from_sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    with pytest.raises(ValueError, match=r"got Linear\(2, 3\) then Linear\(3, 2\)"):
        TanhNet.from_sequential(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="bias=False"):
        TanhNet.from_sequential(nn.Sequential(nn.Linear(2, 3, bias=False), nn.Tanh(), nn.Linear(3, 1)))


class DoubledTanh(nn.Tanh):
    def forward(self, x):
        return torch.tanh(2 * x)


class ScaledLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 3


class Doubling(nn.Sequential):
    def forward(self, x):
        return super().forward(2 * x)


def _changed(where, kind):
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    module = seq if where == "the Sequential" else seq[int(where[1])]
    if kind == "forward_hook":
        module.register_forward_hook(lambda m, args, out: out * 2)
    elif kind == "forward_pre_hook":
        module.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    elif kind == "backward_hook":
        module.register_full_backward_hook(lambda m, gin, gout: None)
    return seq


@pytest.mark.parametrize("seq, message", [
    (nn.Sequential(nn.Linear(2, 3), DoubledTanh(), nn.Linear(3, 1)),
     r"^\[1\] is a DoubledTanh with its own forward, which TanhNet's equations would not compute; expected a plain "
     r"Tanh$"),
    (nn.Sequential(ScaledLinear(2, 3), nn.Tanh(), nn.Linear(3, 1)), r"^\[0\] is a ScaledLinear with its own forward"),
    (nn.Sequential(nn.Linear(2, 3), nn.Tanh(), ScaledLinear(3, 1)), r"^\[2\] is a ScaledLinear with its own forward"),
    (Doubling(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)), r"^the Sequential is a Doubling with its own forward"),
    (nn.Sequential(nn.LazyLinear(3), nn.Tanh(), nn.Linear(3, 1)),
     r"^\[0\] is an uninitialised LazyLinear: run the Sequential on a batch first"),
    *[(_changed(where, kind), f"^{re.escape(where)} has hooks") for where in ("the Sequential", "[0]", "[1]", "[2]")
      for kind in ("forward_hook", "forward_pre_hook", "backward_hook")],
])
def test_from_sequential_refuses_layers_that_compute_something_else(seq, message):
    """A Tanh computing tanh(2x), a Linear or Sequential subclass with its own forward, a hook: accepted, the copy's
    outputs differed from seq(X) (hostile campaign). A parametrized or initialised lazy Linear is copied."""
    with pytest.raises(ValueError, match=message):
        TanhNet.from_sequential(seq)


def test_from_sequential_copies_a_parametrized_or_initialised_lazy_linear():
    from torch.nn.utils import parametrize

    class Symmetric(nn.Module):
        def forward(self, W):
            return W.triu() + W.triu(1).mT

    seq = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    parametrize.register_parametrization(seq[0], "weight", Symmetric())
    lazy = nn.Sequential(nn.LazyLinear(3), nn.Tanh(), nn.Linear(3, 1))
    lazy(torch.randn(4, 3))
    X = torch.randn(5, 3)
    for s in (seq, lazy):
        assert torch.allclose(TanhNet.from_sequential(s)(X), s(X))


@pytest.mark.parametrize("layer, part", [(0, "weight"), (0, "bias"), (2, "weight"), (2, "bias")])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_from_sequential_refuses_layers_of_several_dtypes(layer, part, dtype):
    """Copied into one TanhNet (of the first weight's dtype), the others would be cast silently."""
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    setattr(seq[layer], part, nn.Parameter(getattr(seq[layer], part).detach().to(dtype)))
    with pytest.raises(TypeError, match=rf"^expected both Linear layers' weights and biases on one dtype and device, "
                                        rf"got .*\[{layer}\]\.{part} {dtype} on cpu"):
        TanhNet.from_sequential(seq)


def test_predict_proba_is_sigmoid_of_logits():
    net = TanhNet()
    X = torch.randn(5, 2)
    torch.testing.assert_close(net.predict_proba(X), torch.sigmoid(net(X)))


def test_loss_is_the_seed_cost():
    net = TanhNet()
    X, y = torch.randn(5, 2), torch.randint(0, 2, (5, 1)).float()
    torch.testing.assert_close(net.loss(X, y), torch.nn.functional.binary_cross_entropy_with_logits(net(X), y))


def test_initialisation_is_reproducible_and_tanh_scaled():
    torch.manual_seed(7)
    a = TanhNet(2, 3)
    torch.manual_seed(7)
    b = TanhNet(2, 3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    bound = (5 / 3) * (6 / (2 + 3)) ** 0.5
    assert a.U.abs().max() <= bound and a.U.abs().max() > 0
    assert torch.equal(a.b, torch.zeros(3)) and torch.equal(a.c, torch.zeros(1))


def test_extra_repr():
    assert repr(TanhNet(4, 8)) == "TanhNet(in_features=4, hidden_features=8)"


def test_device_and_dtype_arguments():
    net = TanhNet(2, 3, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in net.parameters())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, float, None])
def test_every_real_floating_dtype_builds_like_the_ensemble(dtype):
    want = torch.float64 if dtype is float else dtype or torch.get_default_dtype()
    assert all(p.dtype == want for p in TanhNet(2, 3, dtype=dtype).parameters())
    assert all(p.dtype == want for p in TanhNetEnsemble(2, 2, 3, dtype=dtype, seeds=[0, 1]).parameters())


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="must be a positive int"):
        TanhNet(bad, 3)
    with pytest.raises(ValueError, match="hidden_features must be a positive int"):
        TanhNet(2, bad)


COPIES = {
    "ensemble[k]": lambda ens, net, seq: ens[2],
    "to_modules": lambda ens, net, seq: ens.to_modules(),
    "from_modules": lambda ens, net, seq: TanhNetEnsemble.from_modules([net] * 5),
    "to_sequential": lambda ens, net, seq: net.to_sequential(),
    "from_sequential": lambda ens, net, seq: TanhNet.from_sequential(seq),
}


@pytest.mark.parametrize("copy", COPIES)
def test_a_copy_draws_nothing_from_torchs_generator(copy):
    """Each built a module that drew its weights and then overwrote them: `torch.manual_seed(5); ensemble[5]` then
    differed from `torch.manual_seed(5); TanhNet(2, 3)`, which is how network 5's start is rebuilt alone."""
    ens, net = TanhNetEnsemble(6, seeds=range(6)), TanhNet(4, 5, dtype=torch.float64)
    seq = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 1))
    torch.manual_seed(5)
    before = torch.get_rng_state()
    COPIES[copy](ens, net, seq)  # that each copies the weights: the tests of each above and in test_ensemble_module
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(5)
    assert torch.equal(ens[5].U, TanhNet(2, 3).U)
