"""reference_equations() and TORCH_TANHNET_REFERENCE: training through the handout's own lines, for a class that edits
one and watches training change (the kernels serve every call otherwise, so an edited line changed nothing)."""

import os
import re
import subprocess
import sys

import pytest
import torch

import torch_tanhnet
from torch_tanhnet import TanhNet, TanhNetEnsemble, reference_equations
from torch_tanhnet.cost import BCEWithLogitsFunction
from torch_tanhnet.ensemble.function import EnsembleBCEFunction, EnsembleFunction
from torch_tanhnet.kernels import dispatch
from torch_tanhnet.network import TanhNetFunction


@pytest.fixture
def calls(monkeypatch):
    """How often each Function's backward equations ran."""
    counted = {}
    for cls in (TanhNetFunction, BCEWithLogitsFunction, EnsembleFunction, EnsembleBCEFunction):
        original = cls.backward_equations

        def spy(*args, _original=original, _name=cls.__name__, **kwargs):
            counted[_name] = counted.get(_name, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "backward_equations", staticmethod(spy))
    return counted


def data(N=40, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, 2, generator=g, dtype=dtype), torch.randint(0, 2, (N, 1), generator=g).to(dtype)


def grads(model, X, y):
    model.zero_grad(set_to_none=True)
    model.loss(X, y).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


def test_inside_the_block_the_handouts_lines_compute_the_gradient_and_give_the_same_numbers(calls):
    torch.manual_seed(0)
    model, (X, y) = TanhNet().double(), data()
    fast = grads(model, X, y)
    assert calls == {}  # the kernels (or torch ops) served: the handout's lines never ran
    with reference_equations():
        reference = grads(model, X, y)
    assert calls == {"TanhNetFunction": 1, "BCEWithLogitsFunction": 1}
    for a, b in zip(fast, reference):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    grads(model, X, y)
    assert calls == {"TanhNetFunction": 1, "BCEWithLogitsFunction": 1}  # off again after the block


def test_the_choice_is_made_by_the_forward_and_the_ensemble_follows_it(calls):
    ensemble, (X, y) = TanhNetEnsemble(5, seeds=range(5), dtype=torch.float64), data()
    with reference_equations():
        eps = ensemble.loss(X, y)
    eps.sum().backward()  # outside the block: the Functions its forward chose
    with reference_equations():
        ensemble.loss_and_grad(X, y)  # the one-call training step too
    assert calls == {"EnsembleFunction": 2, "EnsembleBCEFunction": 2}


def test_an_edited_line_changes_training_only_inside_the_block(monkeypatch):
    # the classroom exercise: drop the 1 − H² of Ḡ = H̄ ⊙ (1 − H²) and the gradient is wrong
    original = TanhNetFunction.backward_equations

    def wrong(z_bar, H_tilde, X, U, W, H, needs=(True,) * 5):  # H read as 0: W̄ = 0 and Ḡ = H̄
        return original(z_bar, H_tilde, X, U, W, torch.zeros_like(H), needs)

    torch.manual_seed(0)
    model, (X, y) = TanhNet().double(), data()
    right = grads(model, X, y)
    monkeypatch.setattr(TanhNetFunction, "backward_equations", staticmethod(wrong))
    assert all(torch.equal(a, b) for a, b in zip(grads(model, X, y), right))
    with reference_equations():
        edited = grads(model, X, y)
    assert not torch.allclose(edited[0], right[0])  # Ū moved


def test_blocks_nest_and_an_error_inside_restores_the_setting():
    with reference_equations():
        with reference_equations(False):
            assert not dispatch.reference_only()
        assert dispatch.reference_only()
        with pytest.raises(ZeroDivisionError), reference_equations(False):
            1 / 0
        assert dispatch.reference_only()
    assert not dispatch.reference_only()


def test_training_runs_through_them_inside_the_block(calls, tmp_path):
    from torch_tanhnet.training import TrainConfig, train

    with reference_equations():
        train(TrainConfig(epochs=3, n_samples=60, progress=False, logdir=str(tmp_path / "run")))
    assert calls.get("TanhNetFunction", 0) >= 3 and calls.get("BCEWithLogitsFunction", 0) >= 3


@pytest.mark.parametrize("value, on", [("1", True), ("0", False), ("", False)])
def test_the_environment_variable_turns_it_on_for_the_process(monkeypatch, value, on):
    monkeypatch.setenv("TORCH_TANHNET_REFERENCE", value)
    monkeypatch.setattr(dispatch, "_default", [])  # as in a process that has not read it yet
    assert dispatch.reference_only() is on
    monkeypatch.setenv("TORCH_TANHNET_REFERENCE", "0" if on else "1")
    assert dispatch.reference_only() is on  # read once: the process's setting


def test_the_environment_variable_turns_it_on_for_a_script():
    code = "import torch_tanhnet.kernels.dispatch as d; print(d.reference_only())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "TORCH_TANHNET_REFERENCE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_it_is_public():
    assert torch_tanhnet.reference_equations is reference_equations and "reference_equations" in torch_tanhnet.__all__


def test_a_sweeps_metrics_follow_it_too(monkeypatch):
    # the sweep's evaluation ran the C kernels inside the block: training followed an edited line, its metrics not
    from torch_tanhnet.sweep import metrics

    ensemble = TanhNetEnsemble(5, seeds=range(5), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 30, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (5, 30, 1), generator=g).double()
    outside = metrics.measure(ensemble, X, y, 20)
    forwards = []
    network = metrics.ensemble_network
    monkeypatch.setattr(metrics, "ensemble_network", lambda *a: (forwards.append(1), network(*a))[1])
    with reference_equations():
        inside = metrics.measure(ensemble, X, y, 20)
    assert forwards == [1]
    torch.testing.assert_close(inside, outside, rtol=1e-12, atol=1e-12)


def test_a_block_holds_for_its_own_thread_and_blocks_may_close_in_any_order():
    # one global saved and put back: two threads' overlapping blocks left it on for good, and a block in one thread
    # turned a teacher's block in another thread off
    import threading

    entered, release, seen = threading.Event(), threading.Event(), {}

    def other():
        with reference_equations():
            entered.set()
            release.wait(10)
            seen["inside, other thread"] = dispatch.reference_only()

    t = threading.Thread(target=other)
    t.start()
    entered.wait(10)
    seen["this thread, meanwhile"] = dispatch.reference_only()
    with reference_equations():
        release.set()
        t.join(10)  # the other thread's block closes inside this one
        seen["inside, this thread"] = dispatch.reference_only()
    assert seen == {"this thread, meanwhile": False, "inside, other thread": True, "inside, this thread": True}
    assert not dispatch.reference_only()

    def block(on):
        with reference_equations(on):
            yield

    first, second = block(True), block(False)
    next(first)
    next(second)
    assert not dispatch.reference_only()  # the innermost open block
    for g in (first, second):  # closed in the order they opened: each takes away only its own
        next(g, None)
    assert not dispatch.reference_only() and not dispatch._local.stack


@pytest.mark.parametrize("value, on, warns", [("1", True, False), ("true", True, False), (" YES ", True, False),
                                              ("on", True, False), ("0", False, False), ("false", False, False),
                                              ("No", False, False), ("off", False, False), ("", False, False),
                                              ("banana", False, True), ("00", False, True)])
def test_an_environment_switch_reads_the_words_people_write(monkeypatch, value, on, warns):
    # only "" and "0" were off: TORCH_TANHNET_REFERENCE=false turned the reference on
    import warnings

    from torch_tanhnet.switches import switch

    monkeypatch.setenv("TORCH_TANHNET_REFERENCE", value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert switch("TORCH_TANHNET_REFERENCE") is on
    assert [str(w.message) for w in caught] == ([f"TORCH_TANHNET_REFERENCE={value!r} is neither on (1, true, yes, on) "
                                                 "nor off (0, false, no, off, or empty): read as off"] if warns else [])


def test_the_scripts_say_when_the_handouts_lines_run(capsys, tmp_path, monkeypatch):
    from conftest import load_script

    monkeypatch.chdir(tmp_path)
    with reference_equations():  # as TORCH_TANHNET_REFERENCE=1 sets it for the whole process
        assert load_script("train").main(["--dry-run", "--n-samples", "40", "--no-progress"]) == 0
        assert load_script("sweep").main(["--dry-run", "--seeds", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^5 steps in [\d.]+ s \(\d+ steps/s, through the handout's own lines \(TORCH_TANHNET_REFERENCE\)"
                     r"\)$", out, re.M)
    assert re.search(r"^2 runs trained in [\d.]+ s, through the handout's own lines", out, re.M)


def test_it_takes_a_bool_works_as_a_decorator_and_one_object_may_be_entered_again():
    with pytest.raises(TypeError, match=r"^reference_equations takes True or False, got 'off'$"):
        reference_equations("off")  # read as True before
    block = reference_equations()
    with block:
        with block:
            assert dispatch.reference_only()
        assert dispatch.reference_only()
    assert not dispatch.reference_only()

    @reference_equations()
    def inside():
        return dispatch.reference_only()

    assert inside() and not dispatch.reference_only()


def test_an_unreadable_environment_value_first_read_under_torch_compile_does_not_break_the_graph(monkeypatch):
    # the lazy read warned inside the traced region: fullgraph=True failed on warnings.warn
    monkeypatch.setenv("TORCH_TANHNET_REFERENCE", "maybe")
    monkeypatch.setattr(dispatch, "_default", [])
    X, y = data()
    model = TanhNet().double()
    loss = torch.compile(lambda X, y: model.loss(X, y), fullgraph=True, backend="eager")(X, y)
    with pytest.warns(UserWarning, match="TORCH_TANHNET_REFERENCE='maybe'"):  # at the first eager call
        torch.testing.assert_close(loss, model.loss(X, y))


def test_a_block_a_generator_opened_here_and_closed_in_another_thread_leaves_this_one():
    # __exit__ looked in the stack of the thread running it: this thread stayed in the reference for good
    import threading

    def gen():
        with reference_equations():
            yield dispatch.reference_only()
            yield dispatch.reference_only()

    g = gen()
    assert next(g)
    t = threading.Thread(target=lambda: list(g))
    t.start()
    t.join(10)
    assert not dispatch.reference_only() and not dispatch._local.stack


def test_generator_and_coroutine_functions_are_not_decorated_silently():
    # the block closed before their bodies ran: they ran outside it, without a word
    with pytest.raises(TypeError, match=r"^reference_equations decorates plain functions; .*gen is a generator"):
        @reference_equations()
        def gen():
            yield 1

    with pytest.raises(TypeError, match=r"coroutine function, whose body runs after the call: open the block inside"):
        @reference_equations()
        async def co():
            return 1


def test_an_unreadable_value_first_read_under_compile_is_warned_about_at_the_first_eager_call(monkeypatch):
    import warnings

    monkeypatch.setenv("TORCH_TANHNET_REFERENCE", "maybe")
    monkeypatch.setattr(dispatch, "_default", [])
    monkeypatch.setattr(dispatch, "compiling", lambda: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dispatch.reference_asked() is False
        monkeypatch.setattr(dispatch, "compiling", lambda: False)
        assert dispatch.reference_asked() is False and dispatch.reference_asked() is False
    assert [str(w.message)[:40] for w in caught] == ["TORCH_TANHNET_REFERENCE='maybe' is neith"]


def test_one_block_object_shared_by_threads_opens_and_closes_cleanly_in_each():
    # its list of stacks was changed by another thread between finding an index and deleting it: StopIteration and
    # IndexError from __exit__, entries left behind, the reference on for good in some threads
    import sys
    import threading

    shared, errors, left = reference_equations(), [], []

    def work():
        try:
            for _ in range(3000):
                with shared:
                    assert dispatch.reference_asked()
            left.append(len(dispatch._local.__dict__.get("stack", [])))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and left == [0, 0, 0, 0] and shared.stacks == []


def test_a_block_written_wrongly_says_how_to_write_it():
    """reference_equations() alone on a line did nothing, silently (the kernels ran on: a student's changed equation
    had no effect); `with reference_equations:` and `@reference_equations` gave Python's or an unclear error."""
    import warnings

    import torch_tanhnet as tt

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tt.reference_equations()
        with tt.reference_equations():  # entered, made and kept for later, decorating: no warning
            pass
        block = tt.reference_equations(False)
        with block:
            pass
        del block

        @tt.reference_equations()
        def f():
            return 1

        assert f() == 1
    assert [str(w.message) for w in caught] == [
        "reference_equations() was made but never entered, so it changed nothing: open a block, with "
        "torch_tanhnet.reference_equations(): ..."]
    with pytest.raises(TypeError, match=r"^reference_equations opens a block with parentheses: with "
                                        r"torch_tanhnet.reference_equations\(\):$"):
        with tt.reference_equations:
            pass
    with pytest.raises(TypeError, match=r"^reference_equations decorates with parentheses: "
                                        r"@torch_tanhnet.reference_equations\(\)$"):
        tt.reference_equations(f)
