"""The loss landscape: torch_tanhnet.hessian against autograd, its spectrum at a known saddle and at minima,
and the training loop's report of the extreme eigenvalues."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_data
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from torch_tanhnet import TanhNet, hessian, hessian_eigenvalues
from torch_tanhnet.audit.reference import loss_reference, network_reference
from torch_tanhnet.landscape import flat_parameters
from torch_tanhnet.training import TrainConfig, TrainResult, metrics, train
from torch_tanhnet.training.setup import load_split

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def model_with(D, H, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    model = TanhNet(D, H, dtype=dtype)
    with torch.no_grad():
        model.b.normal_()
        model.c.normal_()
    return model


def unflatten(theta, model):
    shapes = [getattr(model, n).shape for n in "UbWc"]
    return [p.reshape(s) for p, s in zip(theta.split([s.numel() for s in shapes]), shapes)]


def plain_hessian(model, X, y):
    """∂²ε/∂θ² by reverse over reverse (torch.autograd.functional.hessian) on the plain-ops graph."""
    theta = flat_parameters(model)
    return torch.autograd.functional.hessian(lambda t: loss_reference(X, *unflatten(t, model), y), theta)


def gradient(model, X, y):
    theta = flat_parameters(model).requires_grad_(True)
    return torch.autograd.grad(loss_reference(X, *unflatten(theta, model), y), theta)[0]


@pytest.mark.parametrize("N,D,H", [(1, 2, 3), (8, 2, 3), (5, 3, 4), (6, 1, 2)])
def test_hessian_equals_autograd_on_plain_ops(N, D, H):
    model = model_with(D, H)
    X, y = make_data(N, D)
    want = plain_hessian(model, X, y)
    got = hessian(model, X, y)
    assert got.shape == (H * D + 2 * H + 1,) * 2
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_hessian_of_a_batch_with_leading_dimensions_is_that_of_the_flattened_batch():
    model = model_with(2, 3)
    X, y = make_data(12, 2)
    torch.testing.assert_close(hessian(model, X.reshape(3, 4, 2), y.reshape(3, 4, 1)), hessian(model, X, y),
                               rtol=1e-12, atol=1e-14)


def test_hessian_in_chunks_equals_one_pass(monkeypatch):
    model = model_with(2, 3)
    X, y = make_data(23, 2)
    whole = hessian(model, X, y)
    from torch_tanhnet import landscape

    monkeypatch.setattr(landscape, "TANGENTS", 5)  # 3 passes of columns
    monkeypatch.setattr(landscape, "BUDGET", 5 * 3 * 4)  # 4 samples a pass: 6 chunks, the last of 3
    torch.testing.assert_close(hessian(model, X, y), whole, rtol=1e-12, atol=1e-14)


def test_parameters_are_flattened_U_b_W_c():
    """Diagonal blocks in the order U (row by row), b, W, c, each against autograd on that parameter alone;
    the last entry is ∂²ε/∂c² = (1/N) Σᵢ σ'(zᵢ)."""
    model = model_with(2, 3)
    X, y = make_data(7, 2)
    got = hessian(model, X, y)
    params = [p.detach() for p in (model.U, model.b, model.W, model.c)]
    start = 0
    for i, p in enumerate(params):
        block = torch.autograd.functional.hessian(
            lambda q, i=i: loss_reference(X, *params[:i], q, *params[i + 1:], y), p)
        n = p.numel()
        torch.testing.assert_close(got[start:start + n, start:start + n], block.reshape(n, n), rtol=1e-12, atol=1e-14)
        start += n
    z = model(X).detach()
    torch.testing.assert_close(got[-1, -1], (torch.sigmoid(z) * torch.sigmoid(-z)).mean(), rtol=1e-12, atol=0)


def test_float32_model_gets_a_float64_hessian_unless_asked():
    model = model_with(2, 3, dtype=torch.float32)
    X, y = make_data(9, 2, dtype=torch.float32)
    assert hessian(model, X, y).dtype == torch.float64
    own = hessian(model, X, y, dtype=None)
    assert own.dtype == torch.float32
    torch.testing.assert_close(own.double(), hessian(model, X, y), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad,message", [
    (lambda X, y: (X, y.reshape(-1)), "y must have the same shape as z (6, 1), got (6,)"),
    (lambda X, y: (X[:, :1], y), "X must have shape (*, 2), got (6, 1)"),
    (lambda X, y: (X, y.float()), "y must have z's dtype torch.float64, got torch.float32"),
])
def test_bad_input_is_a_one_line_error(bad, message):
    model = model_with(2, 3)
    X, y = bad(*make_data(6, 2))
    with pytest.raises((ValueError, TypeError)) as info:
        hessian(model, X, y)
    assert message in str(info.value) and "\n" not in str(info.value)


# -- the spectrum at known points --

@pytest.mark.parametrize("N,D,H", [(10, 2, 3), (8, 3, 4), (2, 1, 1)])
def test_the_origin_on_balanced_labels_is_a_saddle_with_the_derived_spectrum(N, D, H):
    """All parameters 0, half the labels 1. Then H = 0 and z = 0, o = 1/2, and with a = (1/N) Σᵢ (1/2 − yᵢ) xᵢ
    the gradient vanishes and the spectrum is exactly {−‖a‖ (H times), 0 (H·D times), +‖a‖ (H times), 1/4}."""
    model = TanhNet(D, H, dtype=torch.float64)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    X, _ = make_data(N, D, seed=3)
    y = torch.tensor([0.0, 1.0] * (N // 2), dtype=torch.float64).reshape(N, 1)
    assert torch.equal(gradient(model, X, y), torch.zeros(H * D + 2 * H + 1, dtype=torch.float64))
    a = ((0.5 - y) * X).mean(0).norm().item()
    want = sorted([-a] * H + [0.0] * (H * D) + [a] * H + [0.25])
    got = hessian_eigenvalues(model, X, y)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-14)
    assert got[0] < 0  # a strict saddle: ε falls along the eigenvectors of −‖a‖


def test_at_the_origin_on_xor_the_second_order_test_is_inconclusive():
    """The four XOR corners have equal class means, so a = 0: the spectrum is {0 (P − 1 times), 1/4}."""
    model = TanhNet(2, 2, dtype=torch.float64)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    X = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]], dtype=torch.float64)
    got = hessian_eigenvalues(model, X, y)
    torch.testing.assert_close(got, torch.tensor([0.0] * 8 + [0.25], dtype=torch.float64), rtol=0, atol=1e-15)


def test_a_teachers_parameters_are_a_minimum_where_the_hessian_is_gauss_newton():
    """With soft labels y = σ(z_teacher), the teacher minimises ε (σ(z) = y at every sample), the residual term
    (σ(z) − y) ∇²z vanishes and the Hessian is Jᵀ diag(σ'(z)/N) J ⪰ 0 (J = ∂z/∂θ)."""
    teacher = model_with(2, 3, seed=4)
    X, _ = make_data(20, 2, seed=5)
    z = teacher(X).detach()
    y = torch.sigmoid(z)
    assert gradient(teacher, X, y).abs().max() < 1e-15
    J = torch.autograd.functional.jacobian(lambda t: network_reference(X, *unflatten(t, teacher))[2].squeeze(1),
                                           flat_parameters(teacher))  # (N, P)
    gauss_newton = J.t() @ (J * (torch.sigmoid(z) * torch.sigmoid(-z) / X.shape[0]))
    torch.testing.assert_close(hessian(teacher, X, y), gauss_newton, rtol=1e-12, atol=1e-14)
    assert hessian_eigenvalues(teacher, X, y)[0] > -1e-14


def test_a_trained_minimum_has_no_negative_eigenvalue():
    teacher = model_with(2, 3, seed=0)
    X, _ = make_data(24, 2, seed=6)
    y = torch.sigmoid(teacher(X)).detach()
    torch.manual_seed(100)
    model = TanhNet(2, 3, dtype=torch.float64)
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=1000, tolerance_grad=1e-13, tolerance_change=0,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = model.loss(X, y)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    assert gradient(model, X, y).norm() < 1e-7  # a critical point
    eigenvalues = hessian_eigenvalues(model, X, y)
    assert eigenvalues[-1] > 0.1 and eigenvalues[0] >= -1e-6 * eigenvalues[-1]


# -- the training loop's report --

def small(tmp_path, **kw):
    base = dict(n_samples=120, epochs=40, log_interval=10, image_interval=20, checkpoint_interval=10,
                logdir=str(tmp_path / "run"), progress=False)
    return TrainConfig(**{**base, **kw})


def train_script():
    sys.path.insert(0, str(SCRIPTS))
    try:
        import train as script
    finally:
        sys.path.pop(0)
    return script


@pytest.mark.parametrize("every_log", [True, False])
def test_training_logs_the_extreme_eigenvalues_at_every_log_or_at_picture_steps(tmp_path, monkeypatch, every_log):
    """At every scalar log where N·P² is small (the course's sizes): ten points at the picture steps, under
    TensorBoard's default smoothing, drew a default moons run's minimum as a saddle to its last step."""
    if not every_log:
        monkeypatch.setattr(metrics, "EVERY_LOG", 0)
    config = small(tmp_path)
    result = train(config)
    ea = EventAccumulator(str(result.logdir), size_guidance={"scalars": 0})
    ea.Reload()
    for tag in ("loss_hessian/min_eigenvalue", "loss_hessian/max_eigenvalue"):
        steps = [e.step for e in ea.Scalars(tag)]
        assert steps == ([0, 10, 20, 30, 40] if every_log else [0, 10, 20, 40])  # pictures: 0, 10, 20, every 20
    data = load_split(config).to(torch.device("cpu"), torch.float32)
    eigenvalues = hessian_eigenvalues(result.model, data.X_train, data.y_train)
    assert result.metrics["loss_hessian/min_eigenvalue"] == pytest.approx(eigenvalues[0].item(), rel=1e-12, abs=1e-15)
    assert result.metrics["loss_hessian/max_eigenvalue"] == pytest.approx(eigenvalues[-1].item(), rel=1e-12)
    assert ea.Scalars("loss_hessian/max_eigenvalue")[-1].value == pytest.approx(eigenvalues[-1].item(), rel=1e-6)
    line = train_script().curvature_line(result)
    assert line.startswith(f"Hessian of the training loss: eigenvalues from {eigenvalues[0].item():.3g} to "
                           f"{eigenvalues[-1].item():.3g}; ")


def test_wide_networks_skip_the_hessian_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "MAX_HESSIAN_PARAMETERS", 12)  # the seed's 13 parameters count as wide
    result = train(small(tmp_path))
    assert not any(k.startswith("loss_hessian/") for k in result.metrics)
    ea = EventAccumulator(str(result.logdir), size_guidance={"scalars": 0})
    ea.Reload()
    assert not any(t.startswith("loss_hessian/") for t in ea.Tags()["scalars"])
    assert train_script().curvature_line(result) == "Hessian of the training loss: not computed (13 parameters > 12)"


@pytest.mark.parametrize("low,high,saturation,reading", [
    (-0.02, 1.1, 0.1, "a negative one"), (1e-4, 1.1, 0.1, "none negative"), (-1e-12, 1.1, 0.1, "none negative"),
    # a solved circles run (test accuracy 0.990): -3.99e-6 beside 0.947 read as "a negative one ... a saddle"
    (-3.99e-6, 0.947, 0.1, "the least barely below 0: flat along some direction rather than curving down"),
    # --lr 50: every unit stuck at ±1 and the Hessian 0, which "none negative: no direction curves down" read as a
    # minimum to a student
    (0.0, 0.0, 1.0, "all ~0 with 100% of the tanh units saturated (|h| > 0.97): flat because the units are stuck"),
    (0.0, 1e-9, 0.5, "none negative"),  # flat with live units: not the saturation line
])
def test_the_summary_reads_the_sign_of_the_least_eigenvalue(low, high, saturation, reading):
    result = TrainResult(TanhNet(), Path("."), {"loss_hessian/min_eigenvalue": low, "loss_hessian/max_eigenvalue": high,
                                                "tanh/saturation": saturation}, 1, 1, 1.0, 1)
    assert reading in train_script().curvature_line(result)
    result.metrics["norm/grad/total"] = 3.2e-4  # what tells a saddle from a slope, beside it
    line = train_script().curvature_line(result)
    assert reading in line and line.endswith("; the gradient's norm 0.00032"), line


def test_what_hessian_cannot_serve_is_one_line(monkeypatch):
    torch.manual_seed(0)
    model = TanhNet(dtype=torch.float64)
    X, y = torch.randn(10, 2, dtype=torch.float64), torch.ones(10, 1, dtype=torch.float64)
    cases = [
        (lambda: hessian(model.to_sequential(), X, y), TypeError, r"model must be a TanhNet, got Sequential \("),
        (lambda: hessian(None, X, y), TypeError, "model must be a TanhNet, got NoneType"),
        (lambda: hessian(model, X, y, dtype="float64"), TypeError, "dtype must be torch.float32, torch.float64"),
        (lambda: hessian(model, X, y, dtype=torch.int64), TypeError, "dtype must be torch.float32, torch.float64"),
        (lambda: hessian_eigenvalues(model, X, y, dtype=torch.float16), TypeError, "got torch.float16"),
        (lambda: hessian_eigenvalues(TanhNet(dtype=torch.bfloat16), X.bfloat16(), y.bfloat16(), dtype=None),
         TypeError, "this model is torch.bfloat16: pass dtype=torch.float64"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message):
            call()
    monkeypatch.setattr("torch_tanhnet.training.setup.available_memory", lambda: 2**20)  # 1 MiB free
    with pytest.raises(ValueError, match=r"the Hessian of this model's 801 parameters is a 801×801 matrix: 10.3 MB"):
        hessian(TanhNet(2, 200, dtype=torch.float64), X, y)


def test_the_hessian_under_warnings_as_errors():
    """PyTorch's first forward-mode call imports a module that calls the deprecated torch.jit.script: under -W error
    (pytest's filterwarnings = error, PYTHONWARNINGS=error) hessian() raised PyTorch's DeprecationWarning, and
    train.py stopped at its first picture. A fresh process: in this one the module may be imported already."""
    code = ("import torch; from torch_tanhnet import TanhNet, hessian_eigenvalues; torch.manual_seed(0); "
            "X = torch.randn(20, 2); print(hessian_eigenvalues(TanhNet(), X, (X[:, :1] > 0).float()).shape)")
    r = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == "torch.Size([13])\n", r.stderr[-500:]


@pytest.mark.parametrize("entries", [13, 50, 2**19])  # a sample a batch, a few, all at once
def test_the_runs_closed_form_hessian_in_batches_of_samples_equals_torch_funcs(entries, monkeypatch):
    monkeypatch.setattr(metrics, "HESSIAN_ENTRIES", entries)
    for n, hidden, dtype in ((37, 3, torch.float32), (5, 8, torch.float64)):
        torch.manual_seed(n)
        model = TanhNet(2, hidden).to(dtype)
        X, y = torch.randn(n, 2, dtype=dtype) * 2, (torch.rand(n, 1) < 0.5).to(dtype)
        eigenvalues = hessian_eigenvalues(model, X, y)
        got = metrics.curvature(model, X, y)
        assert got["loss_hessian/min_eigenvalue"] == pytest.approx(eigenvalues[0].item(), rel=1e-10, abs=1e-14)
        assert got["loss_hessian/max_eigenvalue"] == pytest.approx(eigenvalues[-1].item(), rel=1e-10)


def test_the_runs_hessian_of_a_parametrized_network_and_none_for_a_hooked_one():
    """P was counted over model.parameters(): a weight_norm'd U (its g and v) made a Hessian of the wrong size, a
    RuntimeError; a hooked network's Hessian is not its equations', so none is logged (as hessian() refuses it)."""
    torch.manual_seed(0)
    model = torch.nn.utils.parametrizations.weight_norm(TanhNet().double(), "U")
    X, y = torch.randn(40, 2, dtype=torch.float64), (torch.rand(40, 1) < 0.5).double()
    got = metrics.curvature(model, X, y)
    eigenvalues = hessian_eigenvalues(model, X, y)
    assert got["loss_hessian/min_eigenvalue"] == pytest.approx(eigenvalues[0].item(), rel=1e-10, abs=1e-14)
    hooked = TanhNet().double()
    hooked.register_forward_hook(lambda m, args, out: out * 2)
    assert metrics.curvature(hooked, X, y) == {}


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_the_hessian_is_not_differentiated_silently(transform):
    """hessian() detaches its inputs: under an outer jacrev or jacfwd over X its derivative read exactly 0 (the
    true one's largest entry 0.46). Refused in one line; vmap, which takes no derivative, batches it."""
    torch.manual_seed(0)
    model = TanhNet(dtype=torch.float64)
    X = torch.randn(6, 2, dtype=torch.float64)
    y = (X[:, :1] > 0).double()
    outer = getattr(torch.func, transform)
    for f in (hessian, hessian_eigenvalues):
        with pytest.raises(RuntimeError, match=r"^hessian\(\) gives the Hessian at a point and is not differentiated") \
                as e:
            outer(lambda X, f=f: f(model, X, y))(X)
        assert "\n" not in str(e.value)
    batched = torch.func.vmap(lambda X, y: hessian(model, X, y))(X.reshape(2, 3, 2), y.reshape(2, 3, 1))
    torch.testing.assert_close(batched[1], hessian(model, X[3:], y[3:]))
