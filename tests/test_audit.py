"""The gradient audit agrees on the real code and fails on a deliberately wrong derivative."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torch_tanhnet import BCEWithLogitsFunction, TanhNetFunction
from torch_tanhnet.audit import FORWARD, QUANTITIES, TANGENTS, audit, seed_problem, values
from torch_tanhnet.audit.scalar import SCALAR_EQUATIONS
from torch_tanhnet.network import Adjoints, Tangents

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_gradients.py"
NAMES = [name for _, name, _ in QUANTITIES]
TANGENT_NAMES = [name for _, name, _ in TANGENTS]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_adjoint_agrees_with_autograd_and_the_scalar_loops(dtype):
    report = audit(*seed_problem(8, seed=1, dtype=dtype), scalar=True)
    assert [r.name for r in report.rows] == NAMES
    assert [r.name for r in report.scalar_rows] == ["G", "H", "z", "o", "ε", *NAMES]  # the forward values too
    assert all(r.close for r in report.rows + report.scalar_rows)
    assert [name for name, _ in report.checks] == [
        "gradcheck(TanhNetFunction)", "gradgradcheck(TanhNetFunction)", "gradcheck(TanhNetFunction, forward AD)",
        "gradcheck(BCEWithLogitsFunction)", "gradgradcheck(BCEWithLogitsFunction)",
        "gradcheck(BCEWithLogitsFunction, forward AD)"]
    assert all(ok for _, ok in report.checks) and report.ok
    assert report.rows[0].shape == () and report.rows[5].shape == (8, 3)
    assert [r.name for r in report.tangent_rows] == TANGENT_NAMES == ["Ġ", "Ḣ", "ż", "ε̇"]
    assert all(r.close for r in report.tangent_rows)
    assert [r.shape for r in report.tangent_rows] == [(8, 3), (8, 3), (8, 1), ()]


def wrong_tanh_tangent(X_dot, U_dot, b_dot, W_dot, c_dot, X, U, W, H):
    """Ḣ = (1 − H) ⊙ Ġ, the same slip in forward mode; ż and ε̇ inherit it, Ġ does not."""
    G_dot = X_dot.mm(U.t()) + X.mm(U_dot.t()) + b_dot
    H_dot = (1 - H) * G_dot
    return Tangents(G_dot, H_dot, H_dot.mm(W.t()) + H.mm(W_dot.t()) + c_dot)


@pytest.mark.parametrize("c,label", [(800.0, 1.0), (-800.0, 0.0)])
def test_the_scalar_loops_take_logits_past_exps_range(c, label):
    """z = ±800: the scalar loops' log1p(e^z) raised Python's OverflowError (e^z past 709); the cost is finite."""
    X, U, b, W, _, y = seed_problem(4, seed=1)
    report = audit(X, U, b, W, torch.full((1,), c, dtype=torch.float64), torch.full_like(y, label), scalar=True)
    assert report.ok and all(r.close for r in report.scalar_rows)


def test_a_wrong_tangent_fails_from_its_row_on():
    report = audit(*seed_problem(8), network_tangents=wrong_tanh_tangent, checks=False)
    close = {r.name: r.close for r in report.tangent_rows}
    assert all(r.close for r in report.rows) and not report.ok
    assert close == {"Ġ": True, "Ḣ": False, "ż": False, "ε̇": False}


def test_a_cost_tangent_missing_the_label_term_fails_at_eps_dot():
    def no_label_term(z_dot, y_dot, z, y):  # ε̇ without − (1/N) Σ z ẏ: right only when ẏ = 0
        return ((torch.sigmoid(z) - y) * z_dot).mean()

    report = audit(*seed_problem(8), cost_tangents=no_label_term, checks=False)
    assert [r.name for r in report.tangent_rows if not r.close] == ["ε̇"]


def wrong_tanh_derivative(z_bar, H_tilde, X, U, W, H, needs):
    """Ḡ = H̄ ⊙ (1 − H), a classic slip for 1 − H²; everything after it inherits the error."""
    H_bar = z_bar.mm(W)
    G_bar = H_bar * (1 - H)
    return Adjoints(G_bar.mm(U), G_bar.t().mm(X), G_bar.sum(0), z_bar.t().mm(H), z_bar.sum(0), H_bar, G_bar)


def test_a_wrong_derivative_fails_from_its_row_on():
    report = audit(*seed_problem(8), network_backward=wrong_tanh_derivative, checks=False)
    close = {r.name: r.close for r in report.rows}
    assert not report.ok
    assert all(close[n] for n in ["ε̄", "z̄", "W̄", "c̄", "H̄"])
    assert not any(close[n] for n in ["Ḡ", "Ū", "b̄", "X̄"])
    assert "DISAGREEMENT" in report.format()


def test_a_cost_gradient_missing_one_over_n_fails_at_z_bar():
    def no_mean(eps_bar, z, y, needs):
        return eps_bar * (torch.sigmoid(z) - y), None

    report = audit(*seed_problem(8), cost_backward=no_mean, checks=False)
    assert [r.name for r in report.rows if not r.close][0] == "z̄"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("key, name", [("z_bar", "z̄"), ("H_bar", "H̄"), ("G_bar", "Ḡ"), ("X_bar", "X̄")])
def test_a_per_sample_adjoint_off_by_a_part_in_a_thousand_fails_at_any_n(dtype, key, name):
    """z̄, H̄, Ḡ and X̄ carry the mean's 1/N: compared at atol, a slip of a part in a thousand passed at N = 2·10^4
    (each entry's error below atol), and a float32 audit of 10^5 samples passed an X̄ twice its value ("allclose
    yes"). Compared at atol/N, the slip is its row's failure; the right adjoints agree."""
    problem = seed_problem(2 * 10**4, seed=2, dtype=dtype)
    assert audit(*problem, checks=False).ok

    def off(backward, *args):
        out = backward(*args)
        if key == "z_bar":
            return out[0] * (1 + 1e-3), out[1]
        return out._replace(**{key: getattr(out, key) * (1 + 1e-3)})

    cost, network = BCEWithLogitsFunction.backward_equations, TanhNetFunction.backward_equations
    report = audit(*problem, checks=False, **({"cost_backward": lambda *a: off(cost, *a)} if key == "z_bar" else
                                              {"network_backward": lambda *a: off(network, *a)}))
    assert [r.name for r in report.rows if not r.close][:1] == [name] and not report.ok


def test_weights_are_not_trivial():
    X, U, b, W, c, y = seed_problem(50, seed=2)
    for t in (U, b, W, c):
        assert (t.abs() >= 0.2).all() and ((t.abs() - 1).abs() >= 0.1).all()
    assert set(y.unique().tolist()) == {0.0, 1.0}


def test_table_lists_each_quantity_with_its_equation():
    text = audit(*seed_problem(4), scalar=True).format()
    for _, name, equation in QUANTITIES + TANGENTS:
        assert equation in text
    assert "scalar-form loops" in text and "\nall agree" in text


def test_the_scalar_table_shows_the_lines_its_loops_compute_and_the_checks_their_conditions():
    """The --scalar table showed the vector form (G = X Uᵀ + b) under "the handout's scalar-form loops"; the
    gradchecks' lines did not say they run in float64 on the first 6 samples whatever --dtype and --n said."""
    report = audit(*seed_problem(9, dtype=torch.float32), scalar=True)
    table = report.format().split("scalar-form loops")[1].split("\n\n")[0]
    for key, name, _ in FORWARD + QUANTITIES:
        assert f"\n{name} " in table and SCALAR_EQUATIONS[key] in table
    assert "G = X Uᵀ + b" not in table and "ū_jk = Σ_i ḡ_ij x_ik" in table
    assert "(float64 on the CPU, the first 6 samples)\ngradcheck(TanhNetFunction) " in report.format()
    assert "the first 1 sample)" in audit(*seed_problem(1)).format()
    last = report.format().splitlines()[-1]
    worst = max(r.max_abs_diff for r in report.rows + report.scalar_rows + report.tangent_rows if not r.exact)
    assert last.startswith("all agree within tolerance (where exact says no, the last bits differ, by "
                           f"{worst:.2e} at most")


def test_values_show_float32_to_its_own_digits():
    text = values(*seed_problem(2, seed=3, dtype=torch.float32))
    numbers = [w for line in text.splitlines() if line.startswith("    ") for w in line.split()]
    assert numbers and max(len(w.lstrip("-").replace(".", "").lstrip("0")) for w in numbers) <= 7
    assert any(len(w.lstrip("-").replace(".", "").lstrip("0")) == 10
               for line in values(*seed_problem(2, seed=3)).splitlines() if line.startswith("    ")
               for w in line.split())


def test_cli_exit_code_0_when_all_agree(capsys):
    assert script().main(["--scalar", "--n", "5"]) == 0
    out = capsys.readouterr().out
    assert "gradgradcheck(TanhNetFunction)" in out and "all agree" in out


def script():
    """scripts/check_gradients.py as a module, run in this process (a subprocess costs ~2 s of imports)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import check_gradients
    finally:
        sys.path.pop(0)
    return check_gradients


def test_cli_exit_code_1_on_a_wrong_backward(monkeypatch, capsys):
    check_gradients = script()
    monkeypatch.setattr(TanhNetFunction, "backward_equations", staticmethod(wrong_tanh_derivative))
    assert check_gradients.main(["--n", "4"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREEMENT" in out and re.search(r"^gradcheck\(TanhNetFunction\)\s+FAIL$", out, re.M)


def test_cli_exit_code_1_on_a_wrong_jvp(monkeypatch, capsys):
    check_gradients = script()
    monkeypatch.setattr(TanhNetFunction, "tangent_equations", staticmethod(wrong_tanh_tangent))
    assert check_gradients.main(["--n", "4"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREEMENT" in out
    assert re.search(r"^gradcheck\(TanhNetFunction, forward AD\)\s+FAIL$", out, re.M)
    assert re.search(r"^gradcheck\(TanhNetFunction\)\s+pass$", out, re.M)  # the backward is still right


@pytest.mark.parametrize("args,message", [(["--n", "0"], "argument --n: must be a positive integer, got 0"),
                                          (["--seed", "-1"], "argument --seed: must be an integer in [0, 2**32)")])
def test_cli_rejects_bad_input(args, message, capsys):
    check_gradients = script()
    assert check_gradients.main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"check_gradients.py: error: {message}")


def test_cli_rejects_bad_input_from_the_shell():
    r = subprocess.run([sys.executable, str(SCRIPT), "--n", "0"], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "check_gradients.py: error: argument --n: must be a "
                                                         "positive integer, got 0\n")


def test_cost_backward_equations_is_what_the_function_uses():
    z = torch.randn(5, 1, dtype=torch.float64, requires_grad=True)
    y = torch.rand(5, 1, dtype=torch.float64)
    (g,) = torch.autograd.grad(BCEWithLogitsFunction.apply(z, y), z)
    want, _ = BCEWithLogitsFunction.backward_equations(torch.tensor(1.0, dtype=torch.float64), z.detach(), y)
    torch.testing.assert_close(g, want, rtol=0, atol=0)


def test_cli_refuses_an_n_that_cannot_fit_in_memory(capsys):
    assert script().main(["--n", "100000000000"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err, err
    assert err.startswith("check_gradients.py: error: argument --n: 100000000000 data points would need at least "
                          "20 TB of memory, more than the ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 800000000 bytes. Error code 12 (Cannot allocate memory)"),
])
def test_cli_running_out_of_memory_anyway_is_one_line(error, monkeypatch, capsys):
    import torch_tanhnet.audit

    check_gradients = script()

    def seed_problem(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch_tanhnet.audit, "seed_problem", seed_problem)
    assert check_gradients.main(["--n", "4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("check_gradients.py: error: out of memory (") and "try a smaller --n" in err
    assert len(err.strip().splitlines()) == 1


def hand_example():
    """A teacher's worked example, float64: two samples, weights chosen to be followed by hand."""
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return (t([[1.0, 2.0], [-1.0, 0.5]]), t([[0.5, -0.5], [1.0, 0.0], [0.0, 1.0]]), t([0.0, 0.5, -0.5]),
            t([[1.0, -1.0, 0.5]]), t([0.0]), t([[1.0], [0.0]]))


def test_values_show_the_numbers_of_a_calculation_by_hand():
    # worked by hand (plain Python, not this package): ε = 0.9309949453405499, z̄ = (−0.35698, 0.22842),
    # W̄ = (0.019883, −0.428678, −0.323119), c̄ = −0.128555
    text = values(*hand_example())
    sections = [line for line in text.splitlines() if line.startswith("-- ")]
    assert sections == ["-- inputs --", "-- forward --", "-- backward --"]
    heads = [line.split(" (")[0] for line in text.splitlines() if not line.startswith((" ", "--"))]
    assert heads == ["X", "y", "U", "b", "W", "c", *(name for _, name, _ in FORWARD), *NAMES]
    after = lambda head: text.split(head, 1)[1].splitlines()[1].split()  # noqa: E731 - the row below a head
    assert after("ε ()  ε = (1/N)") == ["0.9309949453"]
    assert [float(v) for v in after("z̄ (2, 1)")[:1]] == pytest.approx([-0.35698], abs=5e-6)
    assert [float(v) for v in after("W̄ (1, 3)")] == pytest.approx([0.019883, -0.428678, -0.323119], abs=5e-7)
    assert [float(v) for v in after("c̄ (1,)")] == pytest.approx([-0.128555], abs=5e-7)
    long = values(*seed_problem(30))
    assert "    … 20 more rows" in long and long.count("more rows") == 10  # X, y, G, H, z, o, z̄, H̄, Ḡ, X̄


def test_the_scalar_loops_catch_a_wrong_forward_value(monkeypatch):
    # the handout's line (1) as the cost, the minus sign missing: ε is the log-likelihood, negative
    def log_likelihood(z, y):
        return (y * torch.nn.functional.logsigmoid(z) + (1 - y) * torch.nn.functional.logsigmoid(-z)).mean()

    monkeypatch.setattr(BCEWithLogitsFunction, "forward", staticmethod(log_likelihood))
    report = audit(*hand_example(), scalar=True, checks=False)
    assert {r.name: r.close for r in report.scalar_rows[:5]} == {"G": True, "H": True, "z": True, "o": True,
                                                                 "ε": False}
    assert not report.ok


def test_cli_values_come_first(capsys):
    assert script().main(["--values", "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.index("-- inputs --") < out.index("-- backward --") < out.index("hand-written backward vs autograd")


def test_a_wrong_forward_line_is_caught_at_its_own_row(monkeypatch):
    # G was formed by the audit's own copy of the line: a Function whose G dropped + b was flagged at H, not at G
    original = TanhNetFunction.forward_equations

    def no_bias(X, U, b, W, c):
        return original(X, U, torch.zeros_like(b), W, c)

    monkeypatch.setattr(TanhNetFunction, "forward_equations", staticmethod(no_bias))
    report = audit(*seed_problem(4), scalar=True, checks=False)
    assert {r.name: r.close for r in report.scalar_rows[:3]} == {"G": False, "H": False, "z": False}


@pytest.mark.parametrize("bad, match", [
    (lambda X, U, b, W, c, y: (X, U.t(), b, W, c, y), r"^U must have shape \(H, D\) = \(3, 2\)"),
    (lambda X, U, b, W, c, y: (X.float(), U, b, W, c, y), r"^X has dtype torch.float32 but U has dtype"),
    (lambda X, U, b, W, c, y: (X.tolist(), U, b, W, c, y), r"^X must be a torch.Tensor, got list"),
    (lambda X, U, b, W, c, y: (X[:0], U, b, W, c, y[:0]), r"^the cost needs at least one sample"),
    (lambda X, U, b, W, c, y: (X, U, b, W, c, y.view(-1)), r"^y must have the same shape as z \(4, 1\)"),
    (lambda X, U, b, W, c, y: tuple(t.half() for t in (X, U, b, W, c, y)),
     r"^the audit compares at float32's and float64's tolerances; got torch.float16"),
    (lambda X, U, b, W, c, y: tuple(t.to("meta") for t in (X, U, b, W, c, y)), r"^X is on the meta device"),
])
def test_the_audit_from_python_checks_its_inputs_in_one_line(bad, match):
    # audit.md invites values() from Python: a transposed U was torch's "mat1 and mat2 shapes cannot be multiplied"
    args = bad(*seed_problem(4))
    for call in (values, audit):
        with pytest.raises((ValueError, TypeError), match=match):
            call(*args)
    with pytest.raises(ValueError, match=r"^rows must be a positive int, got 0$"):
        values(*seed_problem(4), rows=0)


@pytest.mark.parametrize("seed, error, match", [
    ("a", TypeError, r"^tangent_seed must be an integer, got 'a'$"),  # str + int inside the audit
    (1.5, TypeError, r"^tangent_seed must be an integer, got 1.5$"), (True, TypeError, r"got True$"),
    (2**64, ValueError, r"^tangent_seed must be an integer in \[-2\*\*63 - 1, 2\*\*64 - 1\), got 1844"),  # overflow
])
def test_the_audits_tangent_seed_is_checked_in_one_line(seed, error, match):
    with pytest.raises(error, match=match):
        audit(*seed_problem(4), tangent_seed=seed)


def test_the_audit_refuses_values_that_would_disagree_alone_and_takes_an_expanded_X():
    X, U, b, W, c, y = seed_problem(4)
    for bad in (float("nan"), float("inf")):
        Xb = X.clone()
        Xb[0, 0] = bad
        with pytest.raises(ValueError, match=r"^X holds NaN or infinite values: the two sides would disagree"):
            audit(Xb, U, b, W, c, y)
        assert "nan" in values(Xb, U, b, W, c, y) or "inf" in values(Xb, U, b, W, c, y)  # shown as it is
    assert audit(X[:1].expand(4, 2), U, b, W, c, y, checks=False).ok  # torch.func.jvp wrote into the expanded X
    with pytest.raises(ValueError, match=r"^rows must be a positive int, got True$"):
        values(X, U, b, W, c, y, rows=True)


def test_the_audit_runs_under_no_grad_and_refuses_inference_tensors_in_one_line():
    # "can't retain_grad on Tensor that has requires_grad=False" under torch.no_grad(), a traceback
    with torch.no_grad():
        assert audit(*seed_problem(4), checks=False).ok
    with torch.inference_mode():
        made_there = seed_problem(4)
    with pytest.raises(ValueError, match=r"^X was made under torch.inference_mode\(\), and autograd's side"):
        audit(*made_there)
    assert audit(*(t.clone() for t in made_there), checks=False).ok  # as the line says


def test_values_takes_inference_tensors_and_numpy_row_counts():
    # values() computes under no_grad, and took them before the audit's checks were shared with it
    import numpy as np

    with torch.inference_mode():
        made_there = seed_problem(12)
    assert "… 9 more rows" in values(*made_there, rows=np.int64(3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [0.1, 10, 30])
def test_correct_code_agrees_at_weights_far_from_the_seed_problems(dtype, scale):
    """A sum that cancels (X̄ = ḠU, z = HWᵀ + c) rounds at its terms' scale: at weights ×10 a float32 audit read
    correct X̄ and ż as disagreeing (a review). Each row's atol is at least 16·rtol times its largest entry."""
    for n, seed in ((1, 0), (7, 1), (100, 2), (2000, 3)):
        X, U, b, W, c, y = seed_problem(n, seed=seed, dtype=dtype)
        report = audit(X, U * scale, b * scale, W * scale, c, y, checks=False, scalar=n <= 100)
        assert report.ok, [r.name for r in report.rows + report.tangent_rows + (report.scalar_rows or [])
                           if not r.close]


def test_a_slip_of_a_part_in_ten_thousand_in_a_summed_adjoint_is_caught():
    def off(*args):
        out = TanhNetFunction.backward_equations(*args)
        return out._replace(U_bar=out.U_bar * (1 + 1e-4))

    report = audit(*seed_problem(50, seed=4), network_backward=off, checks=False)
    assert [r.name for r in report.rows if not r.close] == ["Ū"]
