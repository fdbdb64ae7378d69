"""The gradient audit: every intermediate adjoint of the handout's derivation, by hand and by autograd.

The hand side runs the project's own backward code (``TanhNetFunction.backward_equations``
and ``BCEWithLogitsFunction.backward_equations``) outside autograd; the autograd side
differentiates the same maths in plain torch ops with ``retain_grad`` on G, H, z and ε.
One row per quantity of the handout: ε̄, z̄, W̄, c̄, H̄, Ḡ, Ū, b̄ and X̄ (the last is not in
the handout). ``scalar=True`` adds the handout's scalar-form loops over i, j, k, for the forward
values (G, H, z, o, ε) and every adjoint. :func:`values` writes every quantity's numbers.

Forward mode the same way: the hand-written tangent equations (``tangent_equations``, the
Functions' jvp) for random tangents of every input, against ``torch.func.jvp`` of the same
plain-ops graph: one row each for Ġ, Ḣ, ż and ε̇.
"""

from __future__ import annotations

import operator
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..checks import check_labels, check_network_inputs, check_size, short
from ..cost import BCEWithLogitsFunction
from ..landscape import forward_mode_ready
from ..network import TanhNetFunction
from .reference import cost_reference, network_reference
from .scalar import SCALAR_EQUATIONS, scalar_forward_backward

Tensor = torch.Tensor

# (key, name as in the handout, the equation it computes)
QUANTITIES = [
    ("eps_bar", "ε̄", "ε̄ = 1"),
    ("z_bar", "z̄", "z̄ = (o − y)/N"),
    ("W_bar", "W̄", "W̄ = z̄ᵀH (the handout's Hᵀz̄, a row as W is)"),
    ("c_bar", "c̄", "c̄ = z̄ᵀ1"),
    ("H_bar", "H̄", "H̄ = z̄W"),
    ("G_bar", "Ḡ", "Ḡ = H̄ ⊙ (1 − tanh²(G))"),
    ("U_bar", "Ū", "Ū = ḠᵀX"),
    ("b_bar", "b̄", "b̄ = Ḡᵀ1"),
    ("X_bar", "X̄", "X̄ = ḠU (not in the handout)"),
]
# the forward values, as the scalar-form loops and :func:`values` show them
FORWARD = [
    ("G", "G", "G = X Uᵀ + b"),
    ("H", "H", "H = tanh(G)"),
    ("z", "z", "z = H Wᵀ + c"),
    ("o", "o", "o = σ(z)"),
    ("eps", "ε", "ε = (1/N) Σᵢ L(zᵢ, yᵢ), L = y log(1 + e⁻ᶻ) + (1 − y) log(1 + eᶻ)"),  # the handout's 2nd line
]
# the same for forward mode: tangents of the outputs from tangents Ẋ, U̇, ḃ, Ẇ, ċ, ẏ of every input
TANGENTS = [
    ("G_dot", "Ġ", "Ġ = Ẋ Uᵀ + X U̇ᵀ + ḃ"),
    ("H_dot", "Ḣ", "Ḣ = (1 − H²) ⊙ Ġ"),
    ("z_dot", "ż", "ż = Ḣ Wᵀ + H Ẇᵀ + ċ"),
    ("eps_dot", "ε̇", "ε̇ = (1/N) Σᵢ [(oᵢ − yᵢ) żᵢ − zᵢ ẏᵢ]"),
]


# the adjoints of one sample each, which carry the mean's 1/N: compared at atol/N, one sample's scale (at atol, a
# float32 audit of 10^5 samples passed an X̄ twice its value: every entry was below atol)
PER_SAMPLE = {"z_bar", "H_bar", "G_bar", "X_bar"}
ROW = 16  # and every row at least at rtol × ROW × its largest entry: a sum that cancels (X̄ = ḠU, z = HWᵀ + c) rounds
# at the scale of its terms, which grows with the weights (a float32 audit at weights ×10 read X̄ and ż as
# disagreeing, correct code); a slip of 2·10⁻⁵ of a row's size is caught where its largest entry passes atol/(16·rtol)


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol): torch.testing.assert_close's defaults for the dtype."""
    return {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5)}[dtype]  # the audit takes no other


def seed_problem(n: int = 8, seed: int = 0, dtype=torch.float64, device="cpu") -> tuple[Tensor, ...]:
    """The handout's 2-3-1 network with random, non-trivial weights on random data and 0/1 labels.

    Weights are drawn from N(0, 1) and kept away from 0 and ±1, so that no symmetric
    start (zeros, ones) can hide a wrong derivative.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    g = torch.Generator().manual_seed(seed)

    def weights(*shape):  # |w| in [0.2, 0.9) or [1.1, 1.8), either sign
        mag = 0.2 + 0.7 * torch.rand(*shape, generator=g, dtype=torch.float64)
        mag = torch.where(torch.rand(*shape, generator=g) < 0.5, mag, mag + 0.9)
        sign = torch.where(torch.rand(*shape, generator=g) < 0.5, -1.0, 1.0).double()
        return (sign * mag).to(device=device, dtype=dtype)

    X = torch.randn(n, 2, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    U, b, W, c = weights(3, 2), weights(3), weights(1, 3), weights(1)
    y = (torch.rand(n, 1, generator=g, dtype=torch.float64) < 0.5).to(device=device, dtype=dtype)
    return X, U, b, W, c, y


def hand_adjoints(X, U, b, W, c, y, network_backward: Callable | None = None,
                  cost_backward: Callable | None = None) -> dict[str, Tensor]:
    """Every adjoint from the project's hand-written backward, run outside autograd.

    ``network_backward`` and ``cost_backward`` default to the Functions' own
    ``backward_equations``; a test passes a wrong one to see the audit fail.
    """
    network_backward = network_backward or TanhNetFunction.backward_equations
    cost_backward = cost_backward or BCEWithLogitsFunction.backward_equations
    with torch.no_grad():
        z, H = TanhNetFunction.forward(X, U, b, W, c)
        eps_bar = torch.ones((), dtype=X.dtype, device=X.device)  # ε̄ = 1
        z_bar, _ = cost_backward(eps_bar, z, y, (True, False))
        adj = network_backward(z_bar, None, X, U, W, H, (True,) * 5)
    return {"eps_bar": eps_bar, "z_bar": z_bar, **{k: getattr(adj, k) for k in
                                                   ("W_bar", "c_bar", "H_bar", "G_bar", "U_bar", "b_bar", "X_bar")}}


def check_audit_inputs(X, U, b, W, c, y, finite: bool = True, autograd: bool = True) -> None:
    """X (N, D), U (H, D), b (H,), W (1, H), c (1,), y (N, 1), one floating dtype and device, at least one sample:
    one-line errors, as the network's own checks give them (a transposed U is named, not a product that fails).
    float32 or float64 (the tolerances are theirs: half precision's rounding read as a DISAGREEMENT), with values
    (not on the meta device) and, with ``finite``, no NaN or infinity (which made the two sides disagree alone);
    with ``autograd`` (the comparison's side), not made under inference mode."""
    check_network_inputs(X, U, b, W, c)
    check_labels(y, (X.shape[0], 1), X.dtype, X.device)
    if X.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the audit compares at float32's and float64's tolerances; got {X.dtype} (convert with "
                        ".double())")
    for name, t in (("X", X), ("U", U), ("b", b), ("W", W), ("c", c), ("y", y)):
        if t.is_meta:
            raise ValueError(f"{name} is on the meta device: it holds no values to audit")
        if autograd and t.is_inference():
            raise ValueError(f"{name} was made under torch.inference_mode(), and autograd's side of the audit "
                             "cannot use it: make it outside that mode (a .clone() outside it is a normal tensor)")
        if finite and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or infinite values: the two sides would disagree for that alone")


def hand_forward(X, U, b, W, c, y) -> dict[str, Tensor]:
    """G, H, z, o and ε as the reference computes them, outside autograd: G, H and z from
    ``TanhNetFunction.forward_equations`` (the lines its forward runs), ε from ``BCEWithLogitsFunction.forward``,
    o = σ(z) as ``TanhNet.predict_proba`` gives it."""
    with torch.no_grad():
        G, H, z = TanhNetFunction.forward_equations(X, U, b, W, c)
        return {"G": G, "H": H, "z": z, "o": torch.sigmoid(z), "eps": BCEWithLogitsFunction.forward(z, y)}


def autograd_adjoints(X, U, b, W, c, y) -> dict[str, Tensor]:
    """The same adjoints from autograd on the plain-ops graph, with retain_grad on the intermediates."""
    leaves = [t.detach().clone().requires_grad_(True) for t in (X, U, b, W, c)]
    G, H, z = network_reference(*leaves)
    eps = cost_reference(z, y)
    for t in (G, H, z, eps):
        t.retain_grad()
    eps.backward()
    Xl, Ul, bl, Wl, cl = leaves
    return {"eps_bar": eps.grad, "z_bar": z.grad, "W_bar": Wl.grad, "c_bar": cl.grad, "H_bar": H.grad,
            "G_bar": G.grad, "U_bar": Ul.grad, "b_bar": bl.grad, "X_bar": Xl.grad}


def _generator_seed(seed) -> int:
    """``seed`` as an int whose successor a torch.Generator takes (seed_tangents draws from seed + 1), or a one-line
    ValueError/TypeError ('a' met str + int; 2**64 "Overflow when unpacking long long")."""
    try:
        value = None if isinstance(seed, bool) else operator.index(seed)
    except TypeError:
        value = None
    if value is None:
        raise TypeError(f"tangent_seed must be an integer, got {short(seed)}")
    if not -2**63 - 1 <= value < 2**64 - 1:
        raise ValueError(f"tangent_seed must be an integer in [-2**63 - 1, 2**64 - 1), got {short(value)}")
    return value


def seed_tangents(X, U, b, W, c, y, seed: int = 0) -> tuple[Tensor, ...]:
    """Random directions Ẋ, U̇, ḃ, Ẇ, ċ, ẏ, from N(0, 1), with the inputs' shapes, dtype and device."""
    g = torch.Generator().manual_seed(seed + 1)
    return tuple(torch.randn(t.shape, generator=g, dtype=torch.float64).to(device=t.device, dtype=t.dtype)
                 for t in (X, U, b, W, c, y))


def hand_tangents(X, U, b, W, c, y, tangents, network_tangents: Callable | None = None,
                  cost_tangents: Callable | None = None) -> dict[str, Tensor]:
    """Every tangent from the project's hand-written jvp equations, run outside autograd.

    ``tangents`` is (Ẋ, U̇, ḃ, Ẇ, ċ, ẏ); ``network_tangents`` and ``cost_tangents`` default to the
    Functions' own ``tangent_equations`` (a test passes a wrong one to see the audit fail).
    """
    network_tangents = network_tangents or TanhNetFunction.tangent_equations
    cost_tangents = cost_tangents or BCEWithLogitsFunction.tangent_equations
    X_dot, U_dot, b_dot, W_dot, c_dot, y_dot = tangents
    with torch.no_grad():
        z, H = TanhNetFunction.forward(X, U, b, W, c)
        tan = network_tangents(X_dot, U_dot, b_dot, W_dot, c_dot, X, U, W, H)
        eps_dot = cost_tangents(tan.z_dot, y_dot, z, y)
    return {"G_dot": tan.G_dot, "H_dot": tan.H_dot, "z_dot": tan.z_dot, "eps_dot": eps_dot}


def autograd_tangents(X, U, b, W, c, y, tangents) -> dict[str, Tensor]:
    """The same tangents from ``torch.func.jvp`` (forward-mode autograd) of the plain-ops graph."""
    def graph(X, U, b, W, c, y):
        G, H, z = network_reference(X, U, b, W, c)
        return G, H, z, cost_reference(z, y)

    _, (G_dot, H_dot, z_dot, eps_dot) = torch.func.jvp(graph, (X, U, b, W, c, y), tuple(tangents))
    return {"G_dot": G_dot, "H_dot": H_dot, "z_dot": z_dot, "eps_dot": eps_dot}


@dataclass
class Row:
    name: str  # as in the handout
    shape: tuple[int, ...]
    exact: bool
    close: bool
    max_abs_diff: float
    equation: str = ""


def compare(hand: dict[str, Tensor], other: dict[str, Tensor], dtype: torch.dtype,
            quantities: list[tuple[str, str, str]] = QUANTITIES) -> list[Row]:
    rtol, atol = tolerance(dtype)
    rows = []
    for key, name, equation in quantities:
        a, b = hand[key], other[key].to(device=hand[key].device, dtype=hand[key].dtype)
        same_shape = a.shape == b.shape
        diff = (a.double() - b.double()).abs().max().item() if same_shape and a.numel() else float("inf")
        row_atol = atol / a.shape[0] if key in PER_SAMPLE and a.dim() else atol  # z̄ = (o − y)/N: one sample's
        if same_shape and b.numel():  # a sum that cancels rounds at its terms' scale, not its own: the row's largest
            row_atol = max(row_atol, ROW * rtol * float(b.abs().max()))
        close = same_shape and torch.allclose(a, b, rtol=rtol, atol=row_atol)
        rows.append(Row(name, tuple(a.shape), same_shape and torch.equal(a, b), close, diff, equation))
    return rows


CHECKED = 6  # samples of gradcheck's finite differences: every entry of every input is perturbed


def function_checks(X, U, b, W, c, y) -> list[tuple[str, bool]]:
    """gradcheck and gradgradcheck of both Functions, and gradcheck of their jvp (forward mode, batched
    tangents too), in float64 on the CPU, on up to CHECKED samples."""
    from torch.autograd import gradcheck, gradgradcheck

    def forward_ad_gradcheck(fn, inputs, raise_exception):  # the jvp alone, single and batched tangents
        return gradcheck(fn, inputs, raise_exception=raise_exception, check_forward_ad=True,
                         check_backward_ad=False, check_batched_forward_grad=True)

    checks = (("gradcheck({})", gradcheck), ("gradgradcheck({})", gradgradcheck),
              ("gradcheck({}, forward AD)", forward_ad_gradcheck))

    def leaf(t):
        return t.detach().double().cpu().requires_grad_(True)

    net = tuple(leaf(t) for t in (X[:CHECKED], U, b, W, c))
    cost = (leaf(TanhNetFunction.apply(*net)[0]), leaf(y[:CHECKED]))
    out = []
    for label, fn, inputs in (("TanhNetFunction", TanhNetFunction.apply, net),
                              ("BCEWithLogitsFunction", BCEWithLogitsFunction.apply, cost)):
        for name, check in checks:
            try:
                ok = check(fn, inputs, raise_exception=False)
            except Exception:  # noqa: BLE001 - a check that errors has failed
                ok = False
            out.append((name.format(label), bool(ok)))
    return out


@dataclass
class AuditReport:
    dtype: torch.dtype
    rows: list[Row]  # hand vs autograd
    scalar_rows: list[Row] | None = None  # hand vs the handout's scalar-form loops
    checks: list[tuple[str, bool]] = field(default_factory=list)
    tangent_rows: list[Row] | None = None  # hand-written jvp vs torch.func.jvp
    checked_samples: int = 0  # the checks' samples: the first 6 at most

    @property
    def ok(self) -> bool:
        rows = self.rows + (self.scalar_rows or []) + (self.tangent_rows or [])
        return all(r.close for r in rows) and all(ok for _, ok in self.checks)

    def format(self) -> str:
        rtol, atol = tolerance(self.dtype)
        parts = [f"hand-written backward vs autograd ({self.dtype}, allclose rtol={rtol:g}, atol={atol:g}: atol/N for "
                 f"z̄, H̄, Ḡ, X̄, which carry the mean's 1/N; for any row at least {ROW}·rtol·its largest entry)",
                 _table(self.rows)]
        if self.scalar_rows is not None:
            parts += ["", "hand-written forward and backward (vector form) vs the handout's scalar-form loops, each "
                          "row's equation as the loop computes it", _table(self.scalar_rows)]
        if self.tangent_rows is not None:
            parts += ["", "hand-written tangents (jvp, forward mode) vs torch.func.jvp", _table(self.tangent_rows)]
        if self.checks:
            width = max(40, *(len(name) + 1 for name, _ in self.checks))
            n = self.checked_samples
            parts += ["", f"autograd's own checks of both Functions (float64 on the CPU, the first {n} "
                          f"sample{'s' if n != 1 else ''})"]
            parts += [f"{name:<{width}} {'pass' if ok else 'FAIL'}" for name, ok in self.checks]
        rows = self.rows + (self.scalar_rows or []) + (self.tangent_rows or [])
        inexact = [r.max_abs_diff for r in rows if not r.exact]
        agree = "all agree within tolerance" + (
            f" (where exact says no, the last bits differ, by {max(inexact):.2e} at most: the two sides compute in "
            "another order or form)" if inexact else ", bit for bit")
        parts += ["", agree if self.ok else "DISAGREEMENT: see the rows whose allclose says no and the checks marked "
                                            "FAIL"]
        return "\n".join(parts)


def _width(s: str) -> int:
    return sum(0 if unicodedata.combining(ch) else 1 for ch in s)


def _pad(s: str, n: int) -> str:
    return s + " " * (n - _width(s))


def _table(rows: list[Row]) -> str:
    head = ["quantity", "equation", "shape", "exact", "allclose", "max |diff|"]
    body = [[r.name, r.equation, str(r.shape), "yes" if r.exact else "no", "yes" if r.close else "no",
             f"{r.max_abs_diff:.2e}"] for r in rows]
    widths = [max(_width(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(_pad(c, w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def audit(X, U, b, W, c, y, *, scalar: bool = False, checks: bool = True,
          network_backward: Callable | None = None, cost_backward: Callable | None = None,
          network_tangents: Callable | None = None, cost_tangents: Callable | None = None,
          tangent_seed: int = 0) -> AuditReport:
    """Compare every adjoint of the hand-written backward with autograd's (and the scalar loops), and
    every tangent of the hand-written jvp with forward-mode autograd's along random directions. The inputs are
    checked as :func:`torch_tanhnet.tanhnet_loss` checks them (one-line errors)."""
    check_audit_inputs(X, U, b, W, c, y)
    tangent_seed = _generator_seed(tangent_seed)
    with torch.inference_mode(False), torch.enable_grad():  # called under no_grad: autograd's side needs its graph
        return _audit(X, U, b, W, c, y, scalar, checks, network_backward, cost_backward, network_tangents,
                      cost_tangents, tangent_seed)


def _audit(X, U, b, W, c, y, scalar, checks, network_backward, cost_backward, network_tangents, cost_tangents,
           tangent_seed) -> AuditReport:
    forward_mode_ready()  # torch's first jvp warns of its own deprecated torch.jit.script: not under -W error
    X, U, b, W, c, y = (t.contiguous() for t in (X, U, b, W, c, y))  # an expanded X: torch.func.jvp writes into it
    hand = hand_adjoints(X, U, b, W, c, y, network_backward, cost_backward)
    report = AuditReport(X.dtype, compare(hand, autograd_adjoints(X, U, b, W, c, y), X.dtype))
    tangents = seed_tangents(X, U, b, W, c, y, tangent_seed)
    report.tangent_rows = compare(hand_tangents(X, U, b, W, c, y, tangents, network_tangents, cost_tangents),
                                  autograd_tangents(X, U, b, W, c, y, tangents), X.dtype, TANGENTS)
    if scalar:
        cpu = [t.detach().double().cpu() for t in (X, U, b, W, c, y)]
        mine = {**hand_forward(X, U, b, W, c, y), **hand}
        report.scalar_rows = compare(mine, scalar_forward_backward(*cpu), X.dtype,
                                     [(key, name, SCALAR_EQUATIONS[key]) for key, name, _ in FORWARD + QUANTITIES])
    if checks:
        report.checks, report.checked_samples = function_checks(X, U, b, W, c, y), min(X.shape[0], CHECKED)
    return report


INPUTS = [("X", "X", "the data"), ("y", "y", "the labels"), ("U", "U", ""), ("b", "b", ""), ("W", "W", ""),
          ("c", "c", "")]


def values(X, U, b, W, c, y, rows: int = 10) -> str:
    """Every quantity's numbers, in the handout's order: the inputs, the forward (G, H, z, o, ε) and the backward
    (ε̄ … X̄) from the hand-written Functions, each under its equation and shape, to set beside a calculation by
    hand. A matrix of more than ``rows`` rows shows its first ``rows``."""
    check_audit_inputs(X, U, b, W, c, y, finite=False, autograd=False)  # a NaN is shown as it is
    rows = check_size("rows", rows)
    found = {"X": X, "y": y, "U": U, "b": b, "W": W, "c": c, **hand_forward(X, U, b, W, c, y),
             **hand_adjoints(X, U, b, W, c, y)}
    parts = []
    for title, quantities in (("inputs", INPUTS), ("forward", FORWARD), ("backward", QUANTITIES)):
        parts.append(f"-- {title} --")
        for key, name, equation in quantities:
            parts.append(_numbers(name, equation, found[key], rows))
    return "\n".join(parts)


def _numbers(name: str, equation: str, t: Tensor, rows: int) -> str:
    head = f"{name} {tuple(t.shape)}" + (f"  {equation}" if equation and equation != name else "")
    m = t.detach().double().cpu().reshape(1, -1) if t.dim() < 2 else t.detach().double().cpu()
    digits = 10 if t.dtype == torch.float64 else 7  # float32 holds about 7 significant digits
    cells = [[f"{v:.{digits}g}" for v in row] for row in m[:rows].tolist()]
    width = max(len(x) for row in cells for x in row) if m.numel() else 0
    lines = [head] + ["    " + "  ".join(x.rjust(width) for x in row) for row in cells]
    if m.shape[0] > rows:
        lines.append(f"    … {m.shape[0] - rows} more rows")
    return "\n".join(lines)
