"""The library training loop: logs every tag, learns, is reproducible, resumes exactly, stops on NaN."""

import re
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from torch_tanhnet.training import checkpoint
from torch_tanhnet.training.config import ConfigError, TrainConfig
from torch_tanhnet.training import TrainingDiverged, train

SCALARS = ["loss/train", "loss/test", "accuracy/train", "accuracy/test", "norm/grad/U", "norm/grad/b",
           "norm/grad/W", "norm/grad/c", "norm/grad/total", "norm/param/U", "norm/param/b", "norm/param/W",
           "norm/param/c", "run/lr", "tanh/saturation", "run/world_size", "run/step_ms"]


def events(logdir):
    ea = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    ea.Reload()
    return ea


def small(tmp_path, **kw):
    base = dict(n_samples=120, epochs=40, log_interval=1, image_interval=20, checkpoint_interval=10,
                logdir=str(tmp_path / "run"), progress=False)
    return TrainConfig(**{**base, **kw})


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_logs_every_tag_with_consecutive_steps_and_the_loss_falls(tmp_path):
    result = train(small(tmp_path))
    ea = events(result.logdir)
    tags = ea.Tags()
    assert set(SCALARS) <= set(tags["scalars"])
    steps = [e.step for e in ea.Scalars("loss/train")]
    assert steps == list(range(0, 41))  # from step 0, the untrained network: the curves start where it starts
    loss = [e.value for e in ea.Scalars("loss/train")]
    assert loss[-1] < 0.7 * loss[0]
    # no step, no gradient and no step time yet at step 0
    assert [e.step for e in ea.Scalars("norm/grad/total")][0] == [e.step for e in ea.Scalars("run/step_ms")][0] == 1
    assert [e.step for e in ea.Scalars("norm/param/U")][0] == 0
    # and the rows the caller gets: step 0 first, with what a log holds before any step
    assert [row["step"] for row in result.history] == steps
    assert set(result.history[1]) - set(result.history[0]) == {"norm/grad/U", "norm/grad/b", "norm/grad/W",
                                                                 "norm/grad/c", "norm/grad/total", "run/step_ms"}
    assert result.history[0]["loss/train"] == pytest.approx(loss[0], rel=1e-6)  # the event holds it in float32
    assert {"maps/decision_boundary", "maps/hidden_units"} <= set(tags["images"])
    assert [e.step for e in ea.Images("maps/decision_boundary")] == [0, 10, 20, 40]  # image_interval 20
    assert tags["graph"]
    assert not any(t.startswith("hparam/") for t in tags["scalars"])  # the HParams tab reads loss/*, accuracy/*
    assert ea.Scalars("run/lr")[0].value == pytest.approx(0.5)



def test_step_ms_times_the_steps_alone_not_the_pictures_between_them(tmp_path, monkeypatch):
    """run/step_ms is the time of an optimizer step: it was the time between two logs over their steps, pictures,
    Hessians and checkpoints included (17-20 times the steps' own after a picture step). Here each picture takes
    0.5 s, which over the 10 steps to the next log would read as 50 ms a step; the steps themselves take < 1 ms."""
    from torch_tanhnet.training import loop

    draw = loop.Run.draw

    def slow_draw(run):
        draw(run)
        time.sleep(0.5)

    monkeypatch.setattr(loop.Run, "draw", slow_draw)
    result = train(small(tmp_path, epochs=30, log_interval=10, image_interval=10))
    step_ms = [e.value for e in events(result.logdir).Scalars("run/step_ms")]
    assert len(step_ms) == 3 and max(step_ms) < 25, step_ms


def test_saturation_and_accuracy_are_fractions(tmp_path):
    result = train(small(tmp_path))
    for key in ("tanh/saturation", "accuracy/train", "accuracy/test"):
        assert 0.0 <= result.metrics[key] <= 1.0


@pytest.mark.parametrize("dataset", ["xor", "circles"])
def test_defaults_reach_95_percent_on_xor_and_circles(tmp_path, dataset):
    cfg = TrainConfig(dataset=dataset, logdir=str(tmp_path / dataset), progress=False, image_interval=10**6)
    result = train(cfg)
    assert result.metrics["accuracy/test"] >= 0.95


def test_same_seed_gives_identical_parameters(tmp_path):
    a = train(small(tmp_path, logdir=str(tmp_path / "a")))
    b = train(small(tmp_path, logdir=str(tmp_path / "b")))
    c = train(small(tmp_path, logdir=str(tmp_path / "c"), seed=1))
    for k, v in params(a.model).items():
        assert torch.equal(v, params(b.model)[k])
    assert not torch.equal(params(a.model)["U"], params(c.model)["U"])


@pytest.mark.parametrize("extra", [{}, {"batch_size": 32, "optimizer": "adam", "lr": 0.05}])
def test_resume_equals_an_uninterrupted_run(tmp_path, extra):
    whole = train(small(tmp_path, logdir=str(tmp_path / "whole"), **extra))
    cfg = small(tmp_path, logdir=str(tmp_path / "parts"), epochs=15, **extra)
    train(cfg)
    resumed = train(small(tmp_path, logdir=str(tmp_path / "parts"), resume=True, **extra),
                    given={"epochs", "resume", "logdir"})
    assert resumed.global_step == whole.global_step
    for k, v in params(whole.model).items():
        assert torch.equal(v, params(resumed.model)[k]), k
    # the curves continue with no overlap and no gap
    steps = [e.step for e in events(tmp_path / "parts").Scalars("loss/train")]
    assert steps == list(range(0, whole.global_step + 1))
    whole_loss = [e.value for e in events(tmp_path / "whole").Scalars("loss/train")]
    assert [e.value for e in events(tmp_path / "parts").Scalars("loss/train")] == whole_loss


def test_resume_after_a_lost_tail_purges_the_overlap(tmp_path):
    # run 25 epochs with checkpoints every 10: the checkpoint is at 20 but logs run to 25
    train(small(tmp_path, epochs=25, checkpoint_interval=10))
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    state.pop("format")
    state.update(global_step=20, epoch=20)  # as if killed after epoch 20's checkpoint...
    whole20 = train(small(tmp_path, logdir=str(tmp_path / "w20"), epochs=20))
    state["model"] = {k: v.clone() for k, v in whole20.model.state_dict().items()}
    state["optimizer"] = checkpoint.load(tmp_path / "w20" / "checkpoint.pt")["optimizer"]
    checkpoint.save_atomic(state, tmp_path / "run" / "checkpoint.pt")
    train(small(tmp_path, epochs=30, resume=True), given={"epochs", "resume", "logdir"})
    steps = [e.step for e in events(tmp_path / "run").Scalars("loss/train")]
    assert steps == list(range(0, 31))


def test_resume_refuses_to_change_the_run(tmp_path):
    train(small(tmp_path, epochs=5))
    with pytest.raises(ConfigError, match=r"^lr: 0.1 differs from the checkpoint's 0.5"):
        train(small(tmp_path, epochs=10, lr=0.1, resume=True), given={"lr", "resume", "logdir", "epochs"})


def test_resume_names_the_settings_as_they_take_effect(tmp_path):
    train(small(tmp_path, epochs=5))  # moons, noise unset: the data set's default, 0.1
    with pytest.raises(ConfigError, match=r"^noise: 0.2 differs from the checkpoint's 0.1;"):
        train(small(tmp_path, epochs=10, noise=0.2, resume=True), given={"noise", "resume", "logdir", "epochs"})


def test_a_checkpoint_whose_model_does_not_fit_says_which_parameter(tmp_path):
    from torch_tanhnet.training.checkpoint import CheckpointError

    train(small(tmp_path, epochs=2))
    path = tmp_path / "run" / "checkpoint.pt"
    state = checkpoint.load(path)
    state["model"]["U"] = torch.zeros(4, 2, dtype=state["model"]["U"].dtype)  # hand-edited: another hidden size
    checkpoint.save_atomic(state, path)
    with pytest.raises(CheckpointError, match=r"does not fit this run \(size mismatch for U: .*\[4, 2\]"):
        train(small(tmp_path, epochs=4, resume=True), given={"resume", "logdir", "epochs"})


@pytest.mark.parametrize("name, value", [("U", float("nan")), ("c", float("inf")), ("W", -float("inf"))])
def test_a_checkpoint_holding_non_finite_weights_is_refused_not_blamed_on_the_learning_rate(tmp_path, name, value):
    # resumed, it diverged at its first step: "the loss became NaN ...; try a smaller lr (the last good checkpoint is
    # kept)", the damaged checkpoint called good
    from torch_tanhnet.training.checkpoint import CheckpointError

    train(small(tmp_path, epochs=2))
    path = tmp_path / "run" / "checkpoint.pt"
    state = checkpoint.load(path)
    state["model"][name].view(-1)[0] = value
    checkpoint.save_atomic(state, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=rf"does not fit this run \(its {name} holds NaN or infinite values, "
                                              r"which no run saves: hand-edited\?\); it cannot be resumed$"):
        train(small(tmp_path, epochs=4, resume=True), given={"resume", "logdir", "epochs"})
    assert path.read_bytes() == before


@pytest.mark.parametrize("optimizer, key", [("sgd", "momentum_buffer"), ("adam", "exp_avg"), ("adam", "exp_avg_sq")])
def test_a_checkpoint_holding_nan_optimizer_state_is_refused(tmp_path, optimizer, key):
    from torch_tanhnet.training.checkpoint import CheckpointError

    train(small(tmp_path, epochs=2, optimizer=optimizer))
    path = tmp_path / "run" / "checkpoint.pt"
    state = checkpoint.load(path)
    state["optimizer"]["state"][0][key].view(-1)[0] = float("nan")
    checkpoint.save_atomic(state, path)
    with pytest.raises(CheckpointError, match=rf"\(its optimizer's {key} holds NaN, which no run saves: hand-edited"):
        train(small(tmp_path, epochs=4, resume=True, optimizer=optimizer), given={"resume", "logdir", "epochs"})
    if key == "exp_avg_sq":  # its overflow, which a real run can reach, is taken: that weight stands still
        state["optimizer"]["state"][0][key].view(-1)[0] = float("inf")
        checkpoint.save_atomic(state, path)
        train(small(tmp_path, epochs=3, resume=True, optimizer=optimizer), given={"resume", "logdir", "epochs"})


@pytest.mark.parametrize("data", [False, True])
def test_a_checkpoint_of_other_data_names_the_likely_cause(tmp_path, data):
    # a built-in data set's run was asked "(a changed --data file?)"
    from torch_tanhnet.training.config import ConfigError

    kw = {}
    if data:
        (tmp_path / "pts.csv").write_text("".join(f"{i / 10},{1 - i / 10},{i % 2}\n" for i in range(40)))
        kw = {"data": str(tmp_path / "pts.csv"), "n_samples": TrainConfig().n_samples}  # no generator setting
    train(small(tmp_path, epochs=2, **kw))
    path = tmp_path / "run" / "checkpoint.pt"
    state = checkpoint.load(path)
    state["data_fingerprint"] = "0" * 64
    checkpoint.save_atomic(state, path)
    why = "a changed data file?" if data else "drawn by another version of the data set's generator?"
    with pytest.raises(ConfigError, match=re.escape(f"the data differ from the checkpoint's ({why})")):
        train(small(tmp_path, epochs=4, resume=True, **kw), given={"resume", "logdir", "epochs"})


def test_new_run_refuses_a_logdir_that_holds_a_run(tmp_path):
    train(small(tmp_path, epochs=2))
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(small(tmp_path, epochs=2))
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before


def test_nan_loss_stops_naming_step_and_tensor_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    from torch_tanhnet import TanhNet

    real_loss, calls = TanhNet.loss, []

    def loss_that_breaks_at_step_7(self, X, y):
        calls.append(1)
        value = real_loss(self, X, y)
        return value * float("nan") if len(calls) == 7 else value

    monkeypatch.setattr(TanhNet, "loss", loss_that_breaks_at_step_7)
    kept = r"\(the last good checkpoint is kept\)$"
    with pytest.raises(TrainingDiverged, match=r"^the loss became NaN or infinite at step 7; try a smaller lr " + kept):
        train(small(tmp_path, epochs=20, checkpoint_interval=5))
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")  # the last good one, from step 5
    assert state["global_step"] == 5
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_divergence_under_weight_decay_names_it_beside_the_learning_rate(tmp_path):
    """--weight-decay 1e10 made U infinite at step 4 with the advice "try a smaller --lr" alone."""
    advice = r"try a smaller lr or weight_decay \(it had no checkpoint yet: nothing of it was kept\)$"
    with pytest.raises(TrainingDiverged, match=r"^the parameter U became NaN or infinite at step \d+; " + advice):
        train(small(tmp_path, weight_decay=1e10))
    assert not (tmp_path / "run").exists()


def test_a_dry_run_that_diverges_says_nothing_was_kept_not_that_its_folder_moved(tmp_path, monkeypatch):
    """A dry run writes into a temporary folder that closing it removes: its divergence said "the moved folder is
    left as it was" (the removed folder read as moved away)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(TrainingDiverged, match=r"; try a smaller lr \(it had no checkpoint yet: nothing of it was "
                                               r"kept\)$"):
        train(TrainConfig(dry_run=True, lr=1e39, progress=False))
    assert [p for p in tmp_path.iterdir() if not p.name.startswith("torchinductor")] == []


def test_an_infinite_gradient_is_named(tmp_path, monkeypatch):
    from torch_tanhnet.training import loop as training

    class BreaksAtStep3(training.TanhNet):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            calls = []
            self.U.register_hook(lambda g: g * float("inf") if calls.append(1) or len(calls) == 3 else g)

    monkeypatch.setattr(training, "TanhNet", BreaksAtStep3)
    with pytest.raises(TrainingDiverged, match=r"the gradient of U became NaN or infinite at step 3"):
        train(small(tmp_path))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()  # no checkpoint was due yet, none is written


def test_minibatches_take_ceil_n_over_b_steps_per_epoch(tmp_path):
    result = train(small(tmp_path, batch_size=40, epochs=3))  # 96 training samples -> 3 steps an epoch
    assert result.global_step == 9 and result.epoch == 3


def test_dry_run_takes_five_steps(tmp_path):
    assert train(small(tmp_path, dry_run=True)).global_step == 5


def test_bad_settings_raise_config_errors(tmp_path):
    for kw, msg in [({"lr": 0.0}, "^lr: must be a positive number"),
                    ({"epochs": 0}, "^epochs: must be a positive integer"),
                    ({"batch_size": 0}, "^batch_size: must be a positive integer"),
                    ({"dataset": "blobs"}, "^dataset: unknown dataset 'blobs'")]:
        with pytest.raises(ConfigError, match=msg):
            train(small(tmp_path, **kw))


def test_resume_keeps_the_saved_settings_the_user_did_not_give(tmp_path):
    train(small(tmp_path, epochs=5, log_interval=2))
    # from the command line only --logdir and --resume: epochs and log interval come from the checkpoint
    resumed = train(small(tmp_path, epochs=2000, log_interval=1, resume=True), given={"logdir", "resume"})
    assert resumed.global_step == 5 and resumed.steps_this_run == 0
    again = train(small(tmp_path, epochs=8, resume=True), given={"logdir", "resume", "epochs"})
    assert again.global_step == 8
    steps = [e.step for e in events(tmp_path / "run").Scalars("loss/train")]
    assert steps == [0, 2, 4, 5, 6, 8]  # step 0, every 2nd step and the last of each run, as the first run logged


@pytest.mark.parametrize("scale", [0.25, 3.0])
def test_init_scale_multiplies_the_default_initial_weights(tmp_path, scale):
    # --init-scale S: U and W as TanhNet draws them under the seed, times S; the biases start at 0
    from torch_tanhnet.training.loop import Run

    base, scaled = (Run.start(small(tmp_path / name, init_scale=s, dtype="float64")) for name, s in (("a", 1.0),
                                                                                                      ("b", scale)))
    try:
        for name in ("U", "W"):
            torch.testing.assert_close(getattr(scaled.model, name), scale * getattr(base.model, name), rtol=0, atol=0)
        assert not scaled.model.b.any() and not scaled.model.c.any()
    finally:
        base.close()
        scaled.close()


def test_resuming_a_sweeps_folder_points_to_the_sweep(tmp_path):
    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.sweep.runner import sweep
    from torch_tanhnet.training.checkpoint import CheckpointError

    sweep(SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=[0], logdir=str(tmp_path / "run"),
                      progress=False, gallery=0))
    with pytest.raises(CheckpointError, match=r"is a sweep's, not a run's; continue it with python scripts/sweep.py "
                                              r"--logdir .*run --resume"):
        train(small(tmp_path, resume=True), given={"resume", "logdir"})
