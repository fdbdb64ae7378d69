"""Bad input to the ensemble: one-line ValueError/TypeError naming what was expected and what came."""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from torch_tanhnet import TanhNet, TanhNetEnsemble
from torch_tanhnet.checks import _format
from torch_tanhnet.ensemble.checks import check_ensemble_inputs

K, D, H, N = 3, 2, 4, 5
shapes = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)


def one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message and message
    return message


@given(shape=shapes)
def test_data_of_any_wrong_shape_is_refused(shape):
    assume(shape not in ((N, D), (K, N, D)) and not (len(shape) == 2 and shape[1] == D)
           and not (len(shape) == 3 and shape[0] == K and shape[2] == D))
    ens = TanhNetEnsemble(K, D, H)
    for call in (ens, ens.predict_proba, lambda X: ens.loss(X, torch.zeros(N, 1))):
        with pytest.raises(ValueError) as info:
            call(torch.zeros(shape))
        assert one_line(info) == (f"X must have shape (N, {D}) shared by the {K} networks or ({K}, N, {D}) one set "
                                  f"each, got {_format(shape)}")


@given(shape=shapes, shared_X=st.booleans())
def test_labels_of_any_wrong_shape_are_refused(shape, shared_X):
    assume(shape not in ((N, 1), (K, N, 1)))
    ens = TanhNetEnsemble(K, D, H)
    X = torch.zeros((N, D) if shared_X else (K, N, D))
    with pytest.raises(ValueError) as info:
        ens.loss(X, torch.zeros(shape))
    assert one_line(info) == (f"y must have shape ({N}, 1) shared by the {K} networks or ({K}, {N}, 1) one set each, "
                              f"got {_format(shape)}")


@given(which=st.sampled_from(["U", "b", "W", "c"]), shape=shapes)
def test_parameters_of_any_wrong_shape_are_refused(which, shape):
    params = {"U": torch.zeros(K, H, D), "b": torch.zeros(K, H), "W": torch.zeros(K, 1, H), "c": torch.zeros(K, 1)}
    assume(shape != tuple(params[which].shape))
    assume(which != "U" or len(shape) != 3)  # another 3-D U is a different (K, H, D): the others then mismatch it
    params[which] = torch.zeros(shape)
    with pytest.raises(ValueError) as info:
        check_ensemble_inputs(torch.zeros(N, D), *params.values())
    assert one_line(info).startswith(f"{which} must have shape")


@pytest.mark.parametrize("bad,error,match", [
    (dict(X=torch.zeros(N, D, dtype=torch.float64)), TypeError, "X has dtype torch.float64 but the parameters "
                                                                "have dtype torch.float32"),
    (dict(X=torch.zeros(N, D, dtype=torch.int64)), TypeError, "X must be a floating-point tensor"),
    (dict(X=[[0.0, 0.0]]), TypeError, "X must be a torch.Tensor, got list"),
    (dict(y=torch.zeros(N, 1, dtype=torch.float64)), TypeError, "y must have the parameters' dtype torch.float32"),
    (dict(y=[0.0] * N), TypeError, "y must be a torch.Tensor, got list"),
    (dict(X=torch.zeros(0, D), y=torch.zeros(0, 1)), ValueError, "the cost needs at least one sample"),
    (dict(X=torch.zeros(K + 1, N, D)), ValueError, rf"or \({K}, N, {D}\) one set each, got \({K + 1}, {N}, {D}\)"),
    (dict(y=torch.zeros(K + 1, N, 1)), ValueError, rf"or \({K}, {N}, 1\) one set each, got \({K + 1}, {N}, 1\)"),
    (dict(y=torch.zeros(N)), ValueError, rf"y must have shape \({N}, 1\) .* got \({N},\)"),
])
def test_wrong_dtypes_kinds_and_network_counts_are_refused(bad, error, match):
    ens = TanhNetEnsemble(K, D, H)
    X, y = bad.get("X", torch.zeros(N, D)), bad.get("y", torch.zeros(N, 1))
    with pytest.raises(error, match=match) as info:
        ens.loss(X, y)
    one_line(info)


@pytest.mark.parametrize("args,kwargs,error,match", [
    ((0,), {}, ValueError, "models must be a positive int, got 0"),
    ((2.0,), {}, ValueError, "models must be a positive int, got 2.0"),
    ((2, 0), {}, ValueError, "in_features must be a positive int, got 0"),
    ((2,), dict(seeds=[1]), ValueError, r"seeds must hold one seed per network, 2, got 1"),
    ((2,), dict(seeds=[1, "a"]), TypeError, r"seeds must be a list of 2 ints"),
    ((2,), dict(seeds=5), TypeError, r"seeds must be a list of 2 ints, got 5"),
])
def test_bad_constructor_arguments_are_refused(args, kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        TanhNetEnsemble(*args, **kwargs)
    one_line(info)


def test_from_modules_refuses_mixed_shapes_dtypes_and_other_modules():
    with pytest.raises(ValueError, match=r"network 0 is \(D=2, H=3, torch.float32, cpu\), network 1 is "
                                         r"\(D=2, H=4, torch.float32, cpu\)") as info:
        TanhNetEnsemble.from_modules([TanhNet(2, 3), TanhNet(2, 4)])
    one_line(info)
    with pytest.raises(ValueError, match="network 1 is .*torch.float64") as info:
        TanhNetEnsemble.from_modules([TanhNet(2, 3), TanhNet(2, 3, dtype=torch.float64)])
    with pytest.raises(TypeError, match="from_modules takes TanhNets, got Linear at position 1"):
        TanhNetEnsemble.from_modules([TanhNet(2, 3), torch.nn.Linear(2, 3)])
    with pytest.raises(ValueError, match="at least one TanhNet"):
        TanhNetEnsemble.from_modules([])
