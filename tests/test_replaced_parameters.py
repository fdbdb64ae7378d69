"""A parameter replaced after construction (``model.U = nn.Parameter(...)``) by one of another shape, dtype or kind
gets a one-line error naming it, on every path of TanhNet and TanhNetEnsemble.

The modules checked X against their sizes, but the C kernels take H (and K) from U and read b, W and c for that
many numbers: a U of 4 hidden units beside a b of 3 returned a loss, a b of 2 gave numbers that changed from run
to run, a U of 10⁶ rows crashed the process, and an ensemble's W of float64 beside a float32 U was read as float32
bytes (costs of 1e19).
"""

import re

import pytest
import torch
from torch import nn

from torch_tanhnet import TanhNet, TanhNetEnsemble, hessian

K, D, H = 4, 2, 3
SINGLE = {
    "forward": lambda m, X, y: m(X),
    "forward_with_hidden": lambda m, X, y: m.forward_with_hidden(X),
    "predict_proba": lambda m, X, y: m.predict_proba(X),
    "loss": lambda m, X, y: m.loss(X, y),
    "loss under no_grad": lambda m, X, y: torch.no_grad()(m.loss)(X, y),
}
ENSEMBLE = {**SINGLE, "loss_and_grad": lambda m, X, y: m.loss_and_grad(X, y),
            "indexing": lambda m, X, y: m[1], "to_modules": lambda m, X, y: m.to_modules()}
SINGLE.update({"to_sequential": lambda m, X, y: m.to_sequential(),  # copy_ broadcast a b of (1,) into all three
               "hessian": lambda m, X, y: hessian(m, X, y)})
SHAPES = {False: {"U": (H, D), "b": (H,), "W": (1, H), "c": (1,)},
          True: {"U": (K, H, D), "b": (K, H), "W": (K, 1, H), "c": (K, 1)}}


def replacements(shape):
    """What a parameter of ``shape`` (float32) can be replaced by, each wrong: (what, value)."""
    wider = (*shape[:-1], shape[-1] + 1)
    return [
        ("one more in its last dimension", nn.Parameter(torch.zeros(wider))),
        ("one fewer in its last dimension", nn.Parameter(torch.zeros(*shape[:-1], shape[-1] - 1))),
        ("a huge first dimension", nn.Parameter(torch.zeros(10**6, *shape[1:]))),
        *([("flattened", nn.Parameter(torch.zeros(shape).flatten()))] if len(shape) > 1 else []),
        ("float64", nn.Parameter(torch.zeros(shape, dtype=torch.float64))),
        ("float16", nn.Parameter(torch.zeros(shape, dtype=torch.float16))),
        ("None", None),
        ("sparse", nn.Parameter(torch.zeros(shape).to_sparse())),
    ]


def cases(ensemble):
    calls = ENSEMBLE if ensemble else SINGLE
    for name, shape in SHAPES[ensemble].items():
        for what, value in replacements(shape):
            for call in calls:
                yield pytest.param(name, value, call, id=f"{name} {what}, {call}")


def check(model, name, value, call, calls):
    X, y = torch.randn(7, D), torch.rand(7, 1)
    calls[call](model, X, y)  # works before
    setattr(model, name, value)
    with pytest.raises((ValueError, TypeError)) as e:
        calls[call](model, X, y)
    message = str(e.value)
    assert "\n" not in message and re.search(rf"(^|'s | but ){name} ", message), message


@pytest.mark.parametrize("name, value, call", list(cases(False)))
def test_tanhnet_refuses_a_replaced_parameter(name, value, call):
    check(TanhNet(D, H), name, value, call, SINGLE)


@pytest.mark.parametrize("name, value, call", list(cases(True)))
def test_the_ensemble_refuses_a_replaced_parameter(name, value, call):
    check(TanhNetEnsemble(K, D, H), name, value, call, ENSEMBLE)


def test_the_message_names_the_parameter_and_both_shapes():
    model = TanhNet(D, H)
    model.U = nn.Parameter(torch.zeros(4, 2))
    message = r"^TanhNet\(in_features=2, hidden_features=3\)'s U must have shape \(3, 2\), got \(4, 2\)"
    with pytest.raises(ValueError, match=message):
        model(torch.randn(5, 2))
    ens = TanhNetEnsemble(K, D, H)
    ens.W = nn.Parameter(torch.zeros(K, 1, H, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^U has dtype torch.float32 but W has dtype torch.float64; they must match"):
        ens.loss(torch.randn(5, 2), torch.rand(5, 1))


def test_parameters_replaced_by_others_of_the_same_shape_are_used():
    """Replacing is allowed where the shapes hold (e.g. a copy, or parameters shared between modules)."""
    model, other = TanhNet(D, H), TanhNet(D, H)
    model.U = other.U
    X = torch.randn(5, D)
    torch.testing.assert_close(model(X), torch.tanh(X @ other.U.T + model.b) @ model.W.T + model.c)


def test_a_run_whose_wrap_parametrizes_a_weight_trains_and_logs_what_it_has(tmp_path):
    """train(wrap=...) putting weight_norm on U: the step's finiteness check read U.grad (None: U is computed) and
    ended the run with an AttributeError; the gradient norms likewise (a re-probe). The check reads the leaves (g and
    v), and the logs give the norms of the gradients held, b, W and c."""
    import warnings

    from torch_tanhnet.training import TrainConfig, train

    def wrap(model):
        torch.nn.utils.parametrizations.weight_norm(model, "U")
        return model.loss

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "the .grad attribute of a non-leaf Tensor" either
        result = train(TrainConfig(n_samples=60, epochs=20, log_interval=10, logdir=str(tmp_path / "r"),
                                   progress=False), wrap=wrap)
    assert {"norm/grad/b", "norm/grad/W", "norm/grad/c"} <= set(result.metrics)
    assert "norm/grad/U" not in result.metrics and "norm/grad/total" not in result.metrics
    assert "loss_hessian/min_eigenvalue" in result.metrics
