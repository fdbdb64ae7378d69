"""Every input check raises ValueError or TypeError naming the expected and the actual shape or dtype."""

import pytest
import torch

from torch_tanhnet import TanhNet, bce_with_logits, tanhnet, tanhnet_loss, tanhnet_with_hidden


@pytest.fixture
def net():
    return TanhNet(2, 3)


def test_wrong_feature_count(net):
    with pytest.raises(ValueError, match=r"X must have shape \(\*, 2\), got \(5, 3\)"):
        net(torch.randn(5, 3))


def test_scalar_input(net):
    with pytest.raises(ValueError, match=r"X must have shape \(\*, 2\), got \(\)"):
        net(torch.tensor(1.0))


def test_function_wrong_number_of_dimensions(net):
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\), got 3-D shape \(4, 5, 2\)"):
        tanhnet(torch.randn(4, 5, 2), net.U, net.b, net.W, net.c)


def test_function_wrong_feature_count(net):
    with pytest.raises(ValueError, match=r"X must have 2 features, shape \(N, 2\), got \(4, 3\)"):
        tanhnet(torch.randn(4, 3), net.U, net.b, net.W, net.c)


def test_function_wrong_parameter_shapes(net):
    with pytest.raises(ValueError, match=r"b must have shape \(3,\) to match U \(3, 2\), got \(1, 3\)"):
        tanhnet(torch.randn(4, 2), net.U, net.b.view(1, 3), net.W, net.c)
    with pytest.raises(ValueError, match=r"W must have shape \(1, 3\) to match U \(3, 2\), got \(3,\)"):
        tanhnet(torch.randn(4, 2), net.U, net.b, net.W.view(3), net.c)
    with pytest.raises(ValueError, match=r"U must have shape \(H, D\), got \(6,\)"):
        tanhnet(torch.randn(4, 2), net.U.view(6), net.b, net.W, net.c)


def test_integer_X(net):
    with pytest.raises(TypeError, match=r"X must be a floating-point tensor, got dtype torch.int64"):
        net(torch.ones(4, 2, dtype=torch.long))


def test_not_a_tensor(net):
    with pytest.raises(TypeError, match="X must be a torch.Tensor, got list"):
        net([[1.0, 2.0]])


def test_dtype_mismatch_between_X_and_parameters(net):
    with pytest.raises(TypeError, match=r"X has dtype torch.float64 but U has dtype torch.float32"):
        net(torch.randn(4, 2, dtype=torch.float64))


def test_device_mismatch_between_X_and_parameters(net):
    X = torch.randn(4, 2, device="meta")
    with pytest.raises(ValueError, match=r"X is on device meta but U is on cpu"):
        net(X)


def test_labels_of_the_wrong_shape(net):
    X = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"y must have the same shape as z \(4, 1\), got \(4,\)"):
        net.loss(X, torch.ones(4))
    with pytest.raises(ValueError, match=r"y must have the same shape as z \(4, 1\), got \(1, 4\)"):
        bce_with_logits(net(X), torch.ones(1, 4))


def test_integer_labels(net):
    with pytest.raises(TypeError, match=r"y must have z's dtype torch.float32, got torch.int64"):
        net.loss(torch.randn(4, 2), torch.ones(4, 1, dtype=torch.long))


def test_labels_on_another_device(net):
    z = net(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"y is on device meta but z is on cpu"):
        bce_with_logits(z, torch.ones(4, 1, device="meta"))


def test_empty_batch_cost():
    with pytest.raises(ValueError, match=r"at least one sample, got z of shape \(0, 1\)"):
        bce_with_logits(torch.zeros(0, 1), torch.zeros(0, 1))


def test_checks_do_not_synchronise(net, monkeypatch):
    # the checks read shapes and dtypes only: no .item() or .tolist() on the hot path
    X, y = torch.randn(4, 2), torch.ones(4, 1)
    for name in ("item", "tolist", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, _n=name, **k: pytest.fail(f"checks called Tensor.{_n}"))
    net.loss(X, y)


# Non-strided layouts, each as (how a dense tensor becomes one, the layout the message names).
NON_DENSE = [
    (lambda t: t.to_sparse(), "torch.sparse_coo"),
    (lambda t: t.to_sparse_csr(), "torch.sparse_csr"),
    (lambda t: t.to_sparse_csc(), "torch.sparse_csc"),
    (lambda t: t.to_sparse_bsr((1, 1)), "torch.sparse_bsr"),
    pytest.param(lambda t: t.to_mkldnn(), "torch._mkldnn",
                 marks=pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no MKL-DNN")),
    (lambda t: torch.nested.nested_tensor(list(t), layout=torch.jagged), "a nested tensor"),
]


@pytest.mark.filterwarnings("ignore::UserWarning")  # sparse CSR/BSR and nested tensors are beta
@pytest.mark.parametrize("convert,layout", NON_DENSE)
def test_sparse_and_other_non_strided_tensors_are_refused(net, convert, layout):
    X, y = torch.randn(4, 2), torch.ones(4, 1)
    params = (net.U, net.b, net.W, net.c)
    calls = [
        ("X", lambda s: net(s)), ("X", lambda s: net.predict_proba(s)), ("X", lambda s: net.loss(s, y)),
        ("X", lambda s: torch.no_grad()(net.loss)(s, y)), ("y", lambda s: net.loss(X, s)),
        ("y", lambda s: torch.no_grad()(net.loss)(X, s)),
        ("X", lambda s: tanhnet(s, *params)), ("X", lambda s: tanhnet_with_hidden(s, *params)),
        ("U", lambda s: tanhnet(X, s, *params[1:])), ("X", lambda s: tanhnet_loss(s, *params, y)),
        ("y", lambda s: tanhnet_loss(X, *params, s)), ("z", lambda s: bce_with_logits(s, y)),
        ("y", lambda s: bce_with_logits(y, s)),
    ]
    for name, call in calls:
        dense = {"X": X, "U": net.U.detach(), "y": y, "z": y}[name]
        with pytest.raises(TypeError) as info:
            call(convert(dense))
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{name} must be a dense (strided) tensor, got {layout}")


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64,
                                   torch.complex128, torch.float8_e4m3fn, "float32", int, complex])
def test_constructor_refuses_dtypes_that_are_not_real_floating_point(dtype):
    with pytest.raises(TypeError) as info:
        TanhNet(2, 3, dtype=dtype)
    hint = " (write dtype=torch.float32)" if dtype == "float32" else ""  # TrainConfig's form of it
    assert str(info.value) == ("dtype must be a real floating-point dtype (torch.float16, torch.bfloat16, "
                               f"torch.float32 or torch.float64), got {dtype!r}{hint}")


@pytest.mark.parametrize("D,H", [(10**30, 2), (2, 10**30), (2**31, 2**31)])
def test_constructor_refuses_sizes_torch_cannot_hold(D, H):
    with pytest.raises(ValueError) as info:
        TanhNet(D, H, device="meta")  # meta: nothing is allocated, were the check to let it through
    assert str(info.value) == (f"TanhNet({D}, {H}) would have {H * (D + 2) + 1} parameters, more than torch can "
                               "hold (at most 2**60)")


@pytest.mark.parametrize("D, H", [(2, 3), (5, 16), (1, 4)])
@pytest.mark.parametrize("call", [tanhnet, tanhnet_with_hidden, "loss"])
def test_a_transposed_U_is_blamed_not_b(D, H, call):
    # U written (D, H), inputs by hidden units: the error said "b must have shape (2,) to match U (2, 3)"
    X, U, b, W, c = torch.randn(4, D), torch.randn(H, D), torch.randn(H), torch.randn(1, H), torch.randn(1)
    args = (X, U.t(), b, W, c)
    with pytest.raises(ValueError) as e:
        tanhnet_loss(*args, torch.zeros(4, 1)) if call == "loss" else call(*args)
    assert str(e.value) == (f"U must have shape (H, D) = ({H}, {D}), hidden units by X's {D} features (nn.Linear's "
                            f"weight layout), got ({D}, {H}): transposed? (U.t())")
