"""The HParams tab, read through TensorBoard's own hparams plugin: what a run and a sweep write."""

import pytest
from tensorboard_reader import hparams_tab, ticked_by_default

from torch_tanhnet.training import hparams, train
from torch_tanhnet.training.config import TrainConfig


def tiny(logdir, **kw):
    base = {"n_samples": 60, "epochs": 6, "log_interval": 2, "image_interval": 10**6, "logdir": str(logdir),
            "progress": False}
    return TrainConfig(**{**base, **kw})


def metric(group_or_session, tag):
    return next(m for m in group_or_session["metricValues"] if m["name"]["tag"] == tag)


def test_a_run_shows_its_defining_settings_ticked_and_its_final_metrics(tmp_path):
    result = train(tiny(tmp_path / "run", lr=0.3))
    experiment, groups = hparams_tab(tmp_path)
    names = [h["name"] for h in experiment["hparamInfos"]]
    assert ticked_by_default(experiment) == ["dataset", "epochs", "hidden", "lr", "optimizer"]
    assert not {"log_interval", "image_interval", "checkpoint_interval", "dist_timeout", "device", "progress",
                "logdir", "resume", "dry_run"} & set(names)
    assert [m["displayName"] for m in experiment["metricInfos"]] == [
        "test accuracy", "train accuracy", "test loss", "train loss"]
    (group,) = groups
    assert group["hparams"]["lr"] == pytest.approx(0.3) and group["hparams"]["dataset"] == "moons"
    assert group["hparams"]["batch_size"] == 48  # full batch: the training set's size
    (session,) = group["sessions"]
    assert session["name"] == "run"
    for tag in ("loss/train", "loss/test", "accuracy/train", "accuracy/test"):
        assert metric(session, tag)["trainingStep"] == 6
        assert metric(session, tag)["value"] == pytest.approx(result.metrics[tag], rel=1e-6)


def test_a_resumed_run_shows_its_new_settings_and_last_metrics_once(tmp_path):
    train(tiny(tmp_path / "run", epochs=4))
    resumed = train(tiny(tmp_path / "run", epochs=10, resume=True), given={"epochs", "resume", "logdir"})
    _, groups = hparams_tab(tmp_path)
    (group,) = groups
    (session,) = group["sessions"]
    assert group["hparams"]["epochs"] == 10
    assert metric(session, "loss/train")["trainingStep"] == 10
    assert metric(session, "loss/train")["value"] == pytest.approx(resumed.metrics["loss/train"], rel=1e-6)


def test_runs_differing_only_in_seed_form_one_group(tmp_path):
    for name, kw in {"s0": {}, "s1": {"seed": 1}, "wide": {"hidden": 4}}.items():
        train(tiny(tmp_path / name, **kw))
    _, groups = hparams_tab(tmp_path)
    sessions = sorted(sorted(s["name"] for s in g["sessions"]) for g in groups)
    assert sessions == [["s0", "s1"], ["wide"]]


def test_a_sweep_writes_the_config_once_and_a_session_per_run_with_its_metrics(tmp_path):
    hparams.write_config(tmp_path, differs={"hidden", "lr", "seed"})
    runs = {f"h{h}-lr{lr}-s{seed}": (TrainConfig(hidden=h, lr=lr, seed=seed), 0.1 * h + lr + seed / 100)
            for h in (2, 3) for lr in (0.1, 0.5) for seed in (0, 1)}
    for name, (config, loss) in runs.items():
        v = hparams.values(config, batch_size=400)
        hparams.write_session(tmp_path / name, v, hparams.group_name(v), metrics={"loss/test": loss}, step=2000)
    experiment, groups = hparams_tab(tmp_path)
    assert ticked_by_default(experiment)[:3] == ["hidden", "lr", "seed"]  # then the others by name
    assert len(groups) == 4
    for g in groups:
        assert len(g["sessions"]) == 2
        losses = [metric(s, "loss/test")["value"] for s in g["sessions"]]
        assert metric(g, "loss/test")["value"] == pytest.approx(sum(losses) / 2)  # the tab's default: the mean
        assert metric(g, "loss/test")["trainingStep"] == 2000


def test_writing_a_session_again_replaces_it(tmp_path):
    hparams.write_config(tmp_path)
    hparams.write_session(tmp_path / "r", {"lr": 0.1}, "g")
    hparams.write_session(tmp_path / "r", {"lr": 0.2}, "g")
    _, groups = hparams_tab(tmp_path)
    assert [g["hparams"]["lr"] for g in groups] == [pytest.approx(0.2)]


def test_an_empty_group_name_is_a_group_of_one(tmp_path):
    hparams.write_config(tmp_path)
    for name in ("a", "b"):
        hparams.write_session(tmp_path / name, {"lr": 0.1}, "")
    _, groups = hparams_tab(tmp_path)
    assert sorted(len(g["sessions"]) for g in groups) == [1, 1]


def test_values_leave_out_what_does_not_apply():
    csv = hparams.values(TrainConfig(data="pts/my_points.csv", optimizer="adam"))
    assert csv["dataset"] == "my_points.csv"
    assert not {"n_samples", "noise", "momentum", "batch_size"} & set(csv)
    gen = hparams.values(TrainConfig(dataset="circles"))
    assert gen["noise"] == 0.05 and gen["momentum"] == 0.9
    assert set(gen) <= {h.name for h in hparams.HPARAMS}


def test_group_name_ignores_the_seed_only():
    assert hparams.group_name(TrainConfig(seed=1)) == hparams.group_name(TrainConfig(seed=2))
    assert hparams.group_name(TrainConfig(lr=0.1)) != hparams.group_name(TrainConfig(lr=0.2))


def test_the_hparams_files_come_first_in_a_runs_folder(tmp_path):
    """TensorBoard reads a run's event files in name order and follows the last; the config and the session,
    rewritten on resume, sort before the files a SummaryWriter names, so it never follows one of them."""
    train(tiny(tmp_path / "run", epochs=2))
    train(tiny(tmp_path / "run", epochs=4, resume=True), given={"epochs", "resume", "logdir"})
    files = sorted(p.name for p in (tmp_path / "run").iterdir() if "tfevents" in p.name)
    assert files[:2] == [hparams.CONFIG_FILE, hparams.SESSION_FILE] and len(files) == 4


def test_the_lists_of_settings_agree_so_that_a_new_one_is_not_left_out_of_one():
    """A setting is run-defining (the sweep may vary it, or it is the seed) or may change on resuming; each list that
    names settings follows from that (docs/layout.md, "A new flag")."""
    from torch_tanhnet.sweep.space import SWEEPABLE
    from torch_tanhnet.training import setup
    from torch_tanhnet.training.config import RESUMABLE

    fields = set(TrainConfig.__dataclass_fields__)
    defining = set(SWEEPABLE) | {"seed"}
    assert fields == defining | RESUMABLE, "a setting that neither defines a run nor may change on resuming"
    assert set(setup.REQUIRED) == defining - {"init_scale"}  # setup.REQUIRED says why not init_scale
    assert {name for name, _ in setup.NAMED} == defining - {"dataset", "data"}  # the name leads with the data
    assert {h.name for h in hparams.HPARAMS} == defining - {"data"}  # a file's hparam is dataset
    assert set(hparams.values(TrainConfig(), batch_size=400)) == defining - {"data"}  # full batch: the size given
