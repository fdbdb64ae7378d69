"""Input checks with one-line messages that name what was expected and what came.

Every check reads only shapes, dtypes and devices: nothing here touches tensor
values, so nothing forces a device synchronisation on the training path.
"""

from __future__ import annotations

import numbers

import torch

Tensor = torch.Tensor


def _format(shape) -> str:
    """A shape as Python writes a tuple: (3,), (4, 2), ()."""
    shape = tuple(shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _shape(t: Tensor) -> str:
    return _format(t.shape)


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces, for a one-line message (a tensor's or an array's repr of several
    rows spans lines)."""
    return " ".join(line.strip() for line in text.splitlines()) if "\n" in text or "\r" in text else text


def cut(text: str) -> str:
    """``text`` for a one-line message: :func:`one_line`, at most 40 characters, a longer one cut with ``...``."""
    text = one_line(text)
    return text if len(text) <= 40 else text[:37] + "..."


def short(value) -> str:
    """``value`` as repr writes it, :func:`cut`: what a one-line message shows of a value it was given."""
    return cut(repr(value))


# The dtypes the parameters can have: torch's real floating-point dtypes that its initialisers draw
# (the float8 dtypes cannot be drawn, complex ones are not real).
PARAMETER_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
PARAMETER_DTYPE_NAMES = "torch.float16, torch.bfloat16, torch.float32 or torch.float64"
# At most this many parameters: 2**60 float64 numbers are 2**63 bytes, past what torch can size a storage
# (int64 bytes) and past any memory.
MAX_PARAMETERS = 2**60


def check_dense(name: str, t: Tensor) -> None:
    """t is a torch.Tensor of layout torch.strided (not sparse, MKL-DNN or nested): the kernels read its strides."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}{_fx_advice(t)}")
    if t.is_nested:
        raise TypeError(f"{name} must be a dense (strided) tensor, got a nested tensor")
    if t.layout is not torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got {t.layout} (convert it with {name}.to_dense())")


def _fx_advice(t: object) -> str:
    """What to do where ``t`` is torch.fx.symbolic_trace's stand-in for a tensor: it cannot follow the checks of
    shapes and dtypes (nor the kernels), which need the tensor itself."""
    if type(t).__module__.startswith("torch.fx"):
        return (" (torch.fx.symbolic_trace's stand-in: it cannot trace through these networks' checks; use "
                "torch.export, or, where the network is called as a module, mark it a leaf with a Tracer's "
                "is_leaf_module)")
    return ""


def check_floating(name: str, t: Tensor) -> None:
    check_dense(name, t)
    if not t.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {t.dtype} "
            f"(convert it with {name}.float())"
        )


def check_network_inputs(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> None:
    """Check the arguments of ``tanhnet(X, U, b, W, c)``: X (N, D), U (H, D), b (H,), W (1, H), c (1,)."""
    for name, t in (("X", X), ("U", U), ("b", b), ("W", W), ("c", c)):
        check_floating(name, t)
    if U.dim() != 2:
        raise ValueError(f"U must have shape (H, D), got {_shape(U)}")
    hidden, features = U.shape
    if (X.dim() == 2 and X.shape[1] != features and hidden == X.shape[1] and b.dim() == 1
            and b.shape[0] == features != hidden):  # U written (D, H), as some texts write it: U is to blame, not b
        raise ValueError(f"U must have shape (H, D) = ({features}, {hidden}), hidden units by X's {hidden} features "
                         f"(nn.Linear's weight layout), got {_shape(U)}: transposed? (U.t())")
    expected = {"b": (hidden,), "W": (1, hidden), "c": (1,)}
    for name, t in (("b", b), ("W", W), ("c", c)):
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"{name} must have shape {_format(expected[name])} to match U {_shape(U)}, "
                             f"got {_shape(t)}")
    if X.dim() != 2:
        raise ValueError(f"X must have shape (N, {features}), got {X.dim()}-D shape {_shape(X)}")
    if X.shape[1] != features:
        raise ValueError(f"X must have {features} features, shape (N, {features}), got {_shape(X)}")
    check_same_device_dtype("X", X, (("U", U), ("b", b), ("W", W), ("c", c)))


def check_module_weights(owner, weights, shapes, *, one_dtype: bool = False) -> None:
    """The parameters a module reads on each call, ``weights`` (U, b, W, c), must be dense tensors of the shapes it
    was built with, ``shapes`` (and, with ``one_dtype``, of one dtype and device): a parameter replaced by one of
    another shape would be read past its end by the kernels, one of another dtype read as the wrong numbers.

    The usual case is one expression (about 0.8 µs, 1.3 µs with ``one_dtype``); the messages, naming ``owner`` as
    torch prints a module, are written only when something is wrong.
    """
    U, b, W, c = weights
    try:  # a nested tensor has no shape: asked first, without an exception (torch.jit.trace raises one from .shape
        # for a parameter it meets as a constant, and has dropped its state by then: swallowed, it crashed the process)
        if (not (U.is_nested or b.is_nested or W.is_nested or c.is_nested)
                and U.shape == shapes[0] and b.shape == shapes[1] and W.shape == shapes[2] and c.shape == shapes[3]
                and U.layout is b.layout is W.layout is c.layout is torch.strided and not (
                    one_dtype and not (U.dtype is b.dtype is W.dtype is c.dtype
                                       and U.device == b.device == W.device == c.device))):
            return
    except AttributeError:  # not a tensor
        pass
    what = f"{type(owner).__name__}({owner.extra_repr()})"
    for name, t, shape in zip(("U", "b", "W", "c"), weights, shapes):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what}'s {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.is_nested or t.layout is not torch.strided:
            came = "a nested tensor" if t.is_nested else t.layout
            raise TypeError(f"{what}'s {name} must be a dense (strided) tensor, got {came}")
        if t.shape != shape:
            raise ValueError(f"{what}'s {name} must have shape {_format(shape)}, got {_shape(t)} "
                             "(a parameter replaced after construction must keep its shape)")
    check_same_device_dtype("U", U, (("b", b), ("W", W), ("c", c)))


def check_same_device_dtype(name: str, t: Tensor, others) -> None:
    """``t`` must share the dtype and device of each ``(name, tensor)`` in ``others``."""
    for other_name, o in others:
        if t.dtype != o.dtype:
            raise TypeError(f"{name} has dtype {t.dtype} but {other_name} has dtype {o.dtype}; they must match")
        if t.device != o.device:
            raise ValueError(f"{name} is on device {t.device} but {other_name} is on {o.device}; they must match")


def check_cost_inputs(z: Tensor, y: Tensor) -> None:
    """Check the arguments of ``bce_with_logits(z, y)``: same shape, same floating dtype and device."""
    check_floating("z", z)
    check_labels(y, tuple(z.shape), z.dtype, z.device)


def check_labels(y: Tensor, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
    """y must have the logits' shape, dtype and device exactly (no broadcasting), and hold a sample."""
    check_dense("y", y)
    if tuple(y.shape) != tuple(shape):
        raise ValueError(
            f"y must have the same shape as z {_format(shape)}, got {_shape(y)} "
            "(no broadcasting: reshape y, e.g. y.view_as(z))"
        )
    if y.dtype != dtype:
        raise TypeError(f"y must have z's dtype {dtype}, got {y.dtype} (convert it with y.to(z.dtype))")
    if y.device != device:
        raise ValueError(f"y is on device {y.device} but z is on {device}; they must match")
    if y.numel() == 0:
        raise ValueError(f"the cost needs at least one sample, got z of shape {_format(shape)}")


def check_features(X: Tensor, in_features: int) -> None:
    """X must be (*, in_features) like nn.Linear's input."""
    check_floating("X", X)
    if X.dim() == 0 or X.shape[-1] != in_features:
        raise ValueError(f"X must have shape (*, {in_features}), got {_shape(X)}")


def check_size(name: str, value, *, at_most: int | None = None) -> int:
    """A constructor's size argument: a positive integer (a Python or NumPy int, not a bool), at most ``at_most`` if
    given; returns it as a Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {short(value)}")
    if at_most is not None and value > at_most:
        raise ValueError(f"{name} must be at most {at_most}, got {value}")
    return int(value)


def check_parameter_count(what: str, count: int) -> None:
    """The parameters of ``what`` (a constructor call, written out) must be few enough for torch to hold."""
    if count > MAX_PARAMETERS:
        raise ValueError(f"{what} would have {count} parameters, more than torch can hold (at most 2**60)")


def check_parameter_dtype(dtype) -> None:
    """A constructor's ``dtype=``: None (torch's default dtype), a real floating-point dtype, or Python's float
    (which torch reads as torch.float64)."""
    if dtype is not None and dtype is not float and not any(dtype is d for d in PARAMETER_DTYPES):
        named = isinstance(dtype, str) and any(getattr(torch, dtype, None) is d for d in PARAMETER_DTYPES)
        hint = f" (write dtype=torch.{dtype})" if named else ""  # TrainConfig's form: the torch.dtype goes here
        raise TypeError(f"dtype must be a real floating-point dtype ({PARAMETER_DTYPE_NAMES}), got "
                        f"{short(dtype)}{hint}")
