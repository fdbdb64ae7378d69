"""Bad input to the ensemble: one-line ValueError/TypeError naming what was expected and what came."""

import warnings

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
    ((2,), dict(seeds={3, 4}), TypeError, r"seeds must be a list of 2 ints, got \{3, 4\}"),  # a set has no order
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


# Non-strided layouts, each as (name, how a dense tensor becomes one, the layout the message names).
NON_DENSE = [
    ("coo", lambda t: t.to_sparse(), "torch.sparse_coo"),
    ("csr", lambda t: t.to_sparse_csr(), "torch.sparse_csr"),
    ("csc", lambda t: t.to_sparse_csc(), "torch.sparse_csc"),
    ("bsr", lambda t: t.to_sparse_bsr((1, 1)), "torch.sparse_bsr"),
    ("bsc", lambda t: t.to_sparse_bsc((1, 1)), "torch.sparse_bsc"),
    pytest.param("mkldnn", lambda t: t.to_mkldnn(), "torch._mkldnn",
                 marks=pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no MKL-DNN")),
    ("nested", lambda t: torch.nested.nested_tensor(list(t), layout=torch.jagged), "a nested tensor"),
]


@pytest.mark.filterwarnings("ignore::UserWarning")  # sparse CSR/BSR and nested tensors are beta
@pytest.mark.parametrize("kind,convert,layout", NON_DENSE)
def test_sparse_and_other_non_strided_data_and_labels_are_refused(kind, convert, layout):
    ens = TanhNetEnsemble(K, D, H)
    X, y = torch.randn(N, D), torch.zeros(N, 1)
    calls = {
        "X": [ens, ens.predict_proba, ens.forward_with_hidden, lambda X: ens.loss(X, y),
              lambda X: ens.loss_and_grad(X, y)],
        "y": [lambda y: ens.loss(X, y), lambda y: ens.loss_and_grad(X, y)],
    }
    for name, fns in calls.items():
        bad = convert(X if name == "X" else y)
        for call in fns:
            with pytest.raises(TypeError) as info:
                call(bad)
            assert one_line(info).startswith(f"{name} must be a dense (strided) tensor, got {layout}")
    assert all(p.grad is None for p in ens.parameters())


def test_loss_and_grad_refuses_inference_mode_and_loss_evaluates_there():
    ens = TanhNetEnsemble(K, D, H, dtype=torch.float64, seeds=[1, 2, 3])
    X, y = torch.randn(N, D, dtype=torch.float64), torch.zeros(N, 1, dtype=torch.float64)
    for data in ((X, y), (X.requires_grad_(True), y)):  # the fused pass and the autograd fallback
        with torch.inference_mode():
            with pytest.raises(RuntimeError) as info:
                ens.loss_and_grad(*data)
            assert one_line(info) == ("loss_and_grad sets gradients for training and cannot run under "
                                      "torch.inference_mode(); call loss(X, y) there to evaluate ε")
            quiet = ens.loss(*data)
        assert all(p.grad is None for p in ens.parameters())
    eps = ens.loss_and_grad(X.detach(), y)  # the ordinary step after it works
    torch.testing.assert_close(quiet, eps, rtol=0, atol=0)
    assert all(p.grad is not None and not p.grad.is_inference() for p in ens.parameters())


def _replaced(name, value, D=2, H=3):
    """A TanhNet(D, H) whose parameter ``name`` was replaced by ``value``."""
    net = TanhNet(D, H)
    setattr(net, name, torch.nn.Parameter(value, requires_grad=value.is_floating_point()))
    return net


@pytest.mark.parametrize("name,shape", [
    ("U", (2, 3)), ("U", (3, 2, 1)), ("U", (6,)), ("b", (1, 3)), ("b", (4,)), ("b", ()),
    ("W", (3,)), ("W", (3, 1)), ("W", (2, 3)), ("c", ()), ("c", (1, 1)), ("c", (2,)),
])
def test_from_modules_refuses_a_parameter_replaced_by_another_shape(name, shape):
    nets = [TanhNet(2, 3), _replaced(name, torch.zeros(shape))]
    expected = {"U": "(3, 2)", "b": "(3,)", "W": "(1, 3)", "c": "(1,)"}[name]
    with pytest.raises(ValueError) as info:
        TanhNetEnsemble.from_modules(nets)
    assert one_line(info) == (f"from_modules: network 1's {name} must have shape {expected} for a TanhNet(2, 3), "
                              f"got {_format(shape)}")


@pytest.mark.parametrize("name", ["b", "W", "c"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_from_modules_refuses_a_parameter_of_another_dtype_rather_than_cast_it(name, dtype):
    shape = {"b": (3,), "W": (1, 3), "c": (1,)}[name]
    nets = [TanhNet(2, 3), TanhNet(2, 3), _replaced(name, torch.ones(shape, dtype=dtype))]
    with pytest.raises(TypeError) as info:
        TanhNetEnsemble.from_modules(nets)
    assert one_line(info) == (f"from_modules: network 2's {name} has dtype {dtype} but its U has torch.float32; "
                              "a network's four parameters must share one dtype")


@pytest.mark.parametrize("name", ["b", "W", "c"])
def test_from_modules_refuses_a_parameter_on_another_device(name):
    shape = {"b": (3,), "W": (1, 3), "c": (1,)}[name]
    with pytest.raises(ValueError) as info:
        TanhNetEnsemble.from_modules([_replaced(name, torch.ones(shape, device="meta"))])
    assert one_line(info) == (f"from_modules: network 0's {name} is on device meta but its U is on cpu; "
                              "a network's four parameters must share one device")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_from_modules_refuses_integer_and_sparse_parameters():
    with pytest.raises(TypeError) as info:
        TanhNetEnsemble.from_modules([TanhNet(2, 3).double(), _replaced("U", torch.zeros(3, 2, dtype=torch.int64))])
    assert one_line(info) == ("from_modules: network 1's U must have a real floating-point dtype (torch.float16, "
                              "torch.bfloat16, torch.float32 or torch.float64), got torch.int64")
    for convert, layout in ((lambda t: t.to_sparse(), "torch.sparse_coo"), (lambda t: t.to_sparse_csr(),
                                                                             "torch.sparse_csr")):
        with pytest.raises(TypeError) as info:
            TanhNetEnsemble.from_modules([_replaced("W", convert(torch.ones(1, 3)))])
        assert one_line(info) == f"from_modules: network 0's W must be a dense (strided) tensor, got {layout}"


BAD_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64, torch.complex128,
              torch.float8_e4m3fn, "float32", int, complex]


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_the_constructor_refuses_dtypes_that_are_not_real_floating_point(dtype):
    for make in (lambda: TanhNetEnsemble(2, dtype=dtype), lambda: TanhNetEnsemble(2, seeds=[0, 1], dtype=dtype)):
        with pytest.raises(TypeError) as info:
            make()
        hint = " (write dtype=torch.float32)" if dtype == "float32" else ""  # TrainConfig's form of it
        assert one_line(info) == ("dtype must be a real floating-point dtype (torch.float16, torch.bfloat16, "
                                  f"torch.float32 or torch.float64), got {dtype!r}{hint}")


@pytest.mark.parametrize("args,match", [
    ((2**31,), "models must be at most 2147483647, got 2147483648"),
    ((10**30,), f"models must be at most 2147483647, got {10**30}"),
    ((2, 10**30), f"TanhNetEnsemble(2, {10**30}, 3) would have {2 * (3 * (10**30 + 2) + 1)} parameters, "
                  "more than torch can hold (at most 2**60)"),
    ((3, 2**31, 2**31), f"TanhNetEnsemble(3, {2**31}, {2**31}) would have {3 * (2**31 * (2**31 + 2) + 1)} "
                        "parameters, more than torch can hold (at most 2**60)"),
])
def test_absurd_sizes_are_refused_with_the_number_named(args, match):
    with pytest.raises(ValueError) as info:
        TanhNetEnsemble(*args, device="meta")  # meta: nothing is allocated, were the check to let it through
    assert one_line(info) == match


@pytest.mark.parametrize("seeds,bad,k", [([2**64, 0], 2**64, 0), ([0, -2**63 - 1], -2**63 - 1, 1),
                                         ([1, 2**100], 2**100, 1)])
def test_seeds_outside_manual_seeds_range_are_refused(seeds, bad, k):
    with pytest.raises(ValueError) as info:
        TanhNetEnsemble(2, seeds=seeds)
    assert one_line(info) == (f"seeds must lie in torch.manual_seed's range [-2**63, 2**64 - 1], got {bad} "
                              f"for network {k}")
    TanhNetEnsemble(2, seeds=[2**64 - 1, -2**63])  # the ends of the range are seeds


def test_seeds_on_the_meta_device_build_the_ensemble_and_leave_the_global_generator_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    ens = TanhNetEnsemble(3, 2, 4, device="meta", seeds=[1, 2, 3])
    assert torch.equal(torch.get_rng_state(), before)
    assert all(p.device.type == "meta" and p.shape[0] == 3 for p in ens.parameters())


def test_the_largest_ensemble_on_the_meta_device_is_built_without_drawing():
    """Meta tensors hold no values: nothing is drawn (a loop over 2**31 - 1 networks that drew nothing took hours),
    and to_empty + reset_parameters then draws on a real device as usual."""
    ens = TanhNetEnsemble(2**31 - 1, 2, 3, device="meta")
    assert ens.U.shape == (2**31 - 1, 3, 2)
    small = TanhNetEnsemble(3, device="meta", seeds=[0, 1, 2]).to_empty(device="cpu")
    small.reset_parameters()
    assert torch.equal(small.U, TanhNetEnsemble(3, seeds=[0, 1, 2]).U)


def test_numpy_and_tensor_integers_are_sizes_and_seeds():
    np = pytest.importorskip("numpy")
    from torch_tanhnet import TanhNet

    assert TanhNet(np.int64(2), np.int32(3)).U.shape == (3, 2)
    ens = TanhNetEnsemble(np.int64(2), seeds=np.array([4, 5]))
    assert ens.models == 2 and type(ens.models) is int and ens.seeds == [4, 5]
    assert torch.equal(ens.U, TanhNetEnsemble(2, seeds=torch.tensor([4, 5])).U)
    assert torch.equal(ens.U, TanhNetEnsemble(2, seeds=[np.int64(4), 5]).U)
    with pytest.raises(ValueError, match="in_features must be a positive int, got np.True_"):
        TanhNet(np.bool_(True), 3)
    with pytest.raises(TypeError, match=r"seeds must be a list of 2 ints, got \[1.5, 2.0\]"):
        TanhNetEnsemble(2, seeds=np.array([1.5, 2.0]))


def _public_ensemble_functions():
    from torch_tanhnet.ensemble import ensemble_loss, ensemble_reference_loss
    from torch_tanhnet.ensemble.hessian import ensemble_gradient, ensemble_gradient_and_hessian

    return [ensemble_loss, ensemble_reference_loss, ensemble_gradient, ensemble_gradient_and_hessian]


def _bad_arguments():
    """(what, X, U, b, W, c, y): each wrong in one way. Mis-shaped ones used to broadcast silently (a c (1, 1) gave
    every network network 0's bias in the Hessian) or be read past their ends by the kernels."""
    good = dict(X=torch.zeros(N, D), U=torch.zeros(K, H, D), b=torch.zeros(K, H), W=torch.zeros(K, 1, H),
                c=torch.zeros(K, 1), y=torch.zeros(N, 1))
    changes = {
        "c (1, 1)": dict(c=torch.zeros(1, 1)), "b (1, H)": dict(b=torch.zeros(1, H)),
        "W (K, H)": dict(W=torch.zeros(K, H)),
        "U 2-D": dict(U=torch.zeros(H, D)), "y (1, 1)": dict(y=torch.zeros(1, 1)), "y (N,)": dict(y=torch.zeros(N)),
        "N = 0": dict(X=torch.zeros(0, D), y=torch.zeros(0, 1)), "X (K+1, N, D)": dict(X=torch.zeros(K + 1, N, D)),
        "X float64": dict(X=torch.zeros(N, D, dtype=torch.float64)), "W float64": dict(W=torch.zeros(K, 1, H).double()),
        "y float64": dict(y=torch.zeros(N, 1, dtype=torch.float64)), "c sparse": dict(c=torch.zeros(K, 1).to_sparse()),
        "b a list": dict(b=[[0.0] * H] * K),
    }
    return [pytest.param(*{**good, **change}.values(), id=what) for what, change in changes.items()]


@pytest.mark.parametrize("X, U, b, W, c, y", _bad_arguments())
@pytest.mark.parametrize("f", _public_ensemble_functions(), ids=lambda f: f.__name__)
def test_the_public_ensemble_functions_check_their_arguments(f, X, U, b, W, c, y):
    with pytest.raises((ValueError, TypeError)) as info:
        f(X, U, b, W, c, y)
    one_line(info)


def _no_plain_values(kind: str, values: list, dtype: torch.dtype) -> torch.Tensor:
    t = torch.tensor(values, dtype=dtype)
    if kind == "meta":
        return t.to("meta")
    with warnings.catch_warnings():  # torch's: nested tensors are a prototype, quantized ones deprecated
        warnings.simplefilter("ignore")
        if kind == "nested":
            return torch.nested.nested_tensor([t[:1], t[1:]])
        return torch.quantize_per_tensor(t.float(), 0.1, 0, torch.qint32)


def _places():
    """Where the package takes numbers as a tensor: (what it expects, the numbers, their dtype, the call)."""
    from torch_tanhnet.ensemble import EnsembleAdam, EnsembleSGD

    ens = TanhNetEnsemble(3)
    return {
        "seeds": ("seeds must be 3 ints", [1, 2, 3], torch.int64, lambda v: TanhNetEnsemble(3, seeds=v)),
        "momentum": ("momentum must hold numbers", [0.1, 0.2, 0.3], torch.float64,
                     lambda v: EnsembleSGD(ens.parameters(), lr=0.1, momentum=v)),
        "weight decay": ("weight_decay must hold numbers", [0.1, 0.2, 0.3], torch.float64,
                         lambda v: EnsembleAdam(ens.parameters(), weight_decay=v)),
        "betas": ("betas must be a pair (β1, β2) of numbers", [0.9, 0.999], torch.float64,
                  lambda v: EnsembleAdam(ens.parameters(), betas=v)),
        "beta1": ("beta1 must hold numbers", [0.9, 0.8, 0.7], torch.float64,
                  lambda v: EnsembleAdam(ens.parameters(), betas=(v, 0.999))),
        "index": ("an ensemble is indexed by network numbers", [0, 2], torch.int64, lambda v: ens[v]),
    }


@pytest.mark.parametrize("kind", ["meta", "nested", "quantized"])
@pytest.mark.parametrize("place", list(_places()))
def test_a_tensor_without_plain_values_given_for_numbers_is_one_line(place, kind):
    """A meta tensor has a shape and no values, a nested one no single shape, a quantized one integers and a scale:
    as seeds, an optimizer's settings or network numbers they met torch's errors from deep inside ("Cannot copy out
    of meta tensor; no data!", "NestedTensorImpl doesn't support sizes. Please file an issue.", "load_scalar:
    invalid type"); one line now, what was expected and what came."""
    expected, values, dtype, call = _places()[place]
    came = {"meta": "a tensor on the meta device (a shape, no values)", "nested": "a nested tensor",
            "quantized": "a quantized tensor"}[kind]
    with pytest.raises(ValueError if kind == "meta" else TypeError) as info:
        call(_no_plain_values(kind, values, dtype))
    assert one_line(info) == f"{expected}, got {came}"


@pytest.mark.parametrize("place", list(_places()))
def test_a_sparse_tensor_given_for_numbers_reads_as_its_dense_values(place):
    expected, values, dtype, call = _places()[place]
    sparse, dense = call(torch.tensor(values, dtype=dtype).to_sparse()), call(torch.tensor(values, dtype=dtype))
    if isinstance(dense, torch.optim.Optimizer):
        sparse, dense = sparse.param_groups[0], dense.param_groups[0]
        assert all(torch.equal(torch.as_tensor(sparse[k]), torch.as_tensor(dense[k])) for k in dense if k != "params")
    elif place == "seeds":
        assert sparse.seeds == dense.seeds
    else:
        assert len(sparse) == len(dense) and torch.equal(sparse.U, dense.U)


def test_numpy_betas_and_a_range_of_networks_are_taken_as_torch_and_python_take_them():
    """torch.optim.Adam takes betas as a NumPy array (it unpacks the pair); a range is a sequence of network
    numbers. Both were refused ("got array([0.9 , 0.99])", "got range")."""
    import numpy as np

    from torch_tanhnet.ensemble import EnsembleAdam

    ens = TanhNetEnsemble(4)
    for betas in (np.array([0.5, 0.99]), np.array([[0.5, 0.6, 0.7, 0.8], [0.99, 0.98, 0.97, 0.96]])):
        group = EnsembleAdam(ens.parameters(), betas=betas).param_groups[0]
        want = EnsembleAdam(ens.parameters(), betas=tuple(torch.as_tensor(betas))).param_groups[0]
        assert all(torch.equal(torch.as_tensor(group[k]), torch.as_tensor(want[k])) for k in ("beta1", "beta2"))
    assert torch.equal(ens[range(1, 4, 2)].U, ens[[1, 3]].U)


@pytest.mark.parametrize("modules, came", [(TanhNet(), "one TanhNet: from_modules([net]) holds it alone"),
                                           (torch.nn.Linear(2, 3), "Linear"), (5, "int"), (None, "NoneType")])
def test_from_modules_given_no_sequence_is_one_line(modules, came):
    with pytest.raises(TypeError) as info:
        TanhNetEnsemble.from_modules(modules)
    assert one_line(info) == f"from_modules takes a sequence of TanhNets, got {came}"


def test_what_stays_off_autocast_runs_on_the_meta_device():
    """Shapes without numbers (how a model is sized before it is built): the Hessians, the ensemble's gradients
    and a hooked ensemble's loss switched autocast off on the meta device, where torch.autocast raises
    "unsupported scalarType"."""
    from torch_tanhnet import hessian, hessian_eigenvalues
    from torch_tanhnet.ensemble.hessian import ensemble_gradient, ensemble_gradient_and_hessian

    X, y = torch.randn(5, 2, device="meta"), torch.rand(5, 1, device="meta")
    assert hessian(TanhNet(device="meta"), X, y).shape == (13, 13)
    assert hessian_eigenvalues(TanhNet(device="meta"), X, y).shape == (13,)  # was "item() ... on meta tensors"
    ens = TanhNetEnsemble(4, device="meta")
    params = [p.detach() for p in ens.parameters()]
    assert ensemble_gradient(X, *params, y).shape == (4, 13)
    gradient, hess = ensemble_gradient_and_hessian(X, *params, y)
    assert gradient.shape == (4, 13) and hess.shape == (4, 13, 13)
    ens.register_forward_hook(lambda module, args, out: out)
    assert ens.loss(X, y).shape == (4,)


@pytest.mark.parametrize("shape", [(6,), (3, 6)])
def test_labels_missing_their_last_dimension_are_told_how_to_reshape(shape):
    ensemble = TanhNetEnsemble(3)
    with pytest.raises(ValueError, match=r"one set each, got \(.*\) \(reshape it: y\.unsqueeze\(-1\)\)$"):
        ensemble.loss(torch.randn(6, 2), torch.zeros(shape))


def test_the_hessian_of_an_ensemble_points_at_the_ensembles_own():
    from torch_tanhnet import hessian
    from torch_tanhnet.ensemble.hessian import ensemble_gradient_and_hessian

    ensemble = TanhNetEnsemble(3, dtype=torch.float64)
    X, y = torch.randn(6, 2, dtype=torch.float64), torch.zeros(6, 1, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"got TanhNetEnsemble \(for each network of an ensemble: "
                                        r"torch_tanhnet\.ensemble\.hessian\.ensemble_gradient_and_hessian\(X, "):
        hessian(ensemble, X, y)
    _, H = ensemble_gradient_and_hessian(X, ensemble.U, ensemble.b, ensemble.W, ensemble.c, y)  # as the line says
    torch.testing.assert_close(H[1].detach(), hessian(ensemble[1], X, y))


def test_seeds_from_any_ordered_iterable_are_taken():
    # seeds=(s for s in ...) was refused where from_modules takes a generator
    from_generator = TanhNetEnsemble(3, seeds=(s for s in (7, 8, 9)))
    assert from_generator.seeds == [7, 8, 9]
    assert torch.equal(from_generator.U, TanhNetEnsemble(3, seeds=[7, 8, 9]).U)


def test_seeds_that_never_end_or_are_one_number_are_refused_in_one_line():
    # list(seeds) of itertools.count() filled the memory; a 0-d tensor raised torch's "iteration over a 0-d tensor"
    import itertools

    import numpy as np

    with pytest.raises(ValueError, match=r"^seeds must hold one seed per network, 3, got more$"):
        TanhNetEnsemble(3, seeds=itertools.count())
    for one in (torch.tensor(5), np.array(5)):
        with pytest.raises(TypeError, match=r"^seeds must be a list of 3 ints, got "):
            TanhNetEnsemble(3, seeds=one)
