"""A sweep's checkpoint that is hand-edited or damaged (a part missing or of the wrong kind, groups of other shapes
or not the plan's, a position that does not add up) is refused in one CheckpointError line, on --resume and by
state.network(), as train.py's checkpoints are (test_reliability.py), never a KeyError or TypeError."""

import shutil

import pytest
import torch

from torch_tanhnet.sweep import runner
from torch_tanhnet.sweep import state as checkpoints
from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.training import checkpoint
from torch_tanhnet.training.checkpoint import CheckpointError
from torch_tanhnet.training.config import ConfigError

VALUES = {"dataset": ["xor"], "epochs": [4], "n_samples": [20], "hidden": [2]}
BAD = [None, "x", 1.5, -1, [], {}, {"x": 1}, torch.zeros(2), True]


def config(logdir, **kw):
    return SweepConfig(**{**dict(values=VALUES, seeds=[0, 1], logdir=str(logdir), progress=False, gallery=0), **kw})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A finished sweep's checkpoint, and one of a sweep stopped inside its group (its 'current' set)."""
    root = tmp_path_factory.mktemp("sweeps")
    runner.sweep(config(root / "done"))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(runner.GroupTrainer, "result", lambda self: (_ for _ in ()).throw(RuntimeError("stop")))
        with pytest.raises(RuntimeError):
            runner.sweep(config(root / "midway", checkpoint_interval=2, checkpoint_seconds=0))
        # stopped inside groups whose optimizers hold settings per network (K numbers) or Adam's betas and eps
        for name, values in (("midway_sgd", {"lr": [0.1, 0.5], "momentum": [0.0, 0.9], "weight_decay": [0.001]}),
                             ("midway_adam", {"optimizer": ["adam"], "lr": [0.01, 0.02]})):
            with pytest.raises(RuntimeError):
                runner.sweep(config(root / name, values={**VALUES, **values}, checkpoint_interval=2,
                                    checkpoint_seconds=0))
    names = ("done", "midway", "midway_sgd", "midway_adam")
    return {name: (root / name, checkpoint.load(root / name / "checkpoint.pt")) for name in names}


def refused(tmp_path, source, state, network=True, match=""):
    """Both readers of a sweep's checkpoint refuse ``state`` in one line (saying ``match``)."""
    folder = tmp_path / "copy"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    torch.save(state, folder / "checkpoint.pt")
    calls = [lambda: runner.sweep(config(folder, resume=True))]
    if network:
        calls.append(lambda: checkpoints.network(folder, 0))
    for call in calls:
        with pytest.raises(CheckpointError) as e:
            call()
        assert "\n" not in str(e.value) and "checkpoint" in str(e.value) and match in str(e.value), str(e.value)


def test_the_untouched_checkpoints_resume(saved, tmp_path):
    for name, (source, good) in saved.items():
        shutil.copytree(source, tmp_path / name)
        values = {**VALUES, **good["config"]["values"]}
        assert len(runner.sweep(config(tmp_path / name, values=values, resume=True)).results.rows) == 2 * len(
            values.get("lr", [0])) * len(values.get("momentum", [0]))


def test_any_part_missing_or_of_the_wrong_kind_is_refused(saved, tmp_path):
    for source, good in saved.values():
        for key in checkpoints.FIELDS:
            refused(tmp_path, source, {k: v for k, v in good.items() if k != key})
            for value in BAD:
                if (key, repr(value)) in (("current", "None"), ("groups", "{}"), ("current", "{}"), ("seconds", "1.5"),
                                          ("complete", "True")):
                    continue  # a valid part (no group in training, no group finished, seconds trained, finished)
                refused(tmp_path, source, {**good, key: value}, network=key != "current")


def test_a_group_with_any_part_missing_of_the_wrong_kind_or_shape_is_refused(saved, tmp_path):
    source, good = saved["done"]
    group = good["groups"][0]
    edits = [{k: v for k, v in group.items() if k != key} for key in checkpoints.GROUP]
    edits += [{**group, key: value} for key in checkpoints.GROUP for value in BAD[:5]]
    edits += [{**group, "params": {k: v for k, v in group["params"].items() if k != name}} for name in "UbWc"]
    edits += [{**group, "params": {**group["params"], name: v[:1]}} for name, v in group["params"].items()]
    edits += [{**group, "params": {**group["params"], "W": group["params"]["W"].double()}},
              {**group, "history": group["history"][:, :1]}, {**group, "diverged_at": torch.zeros(5)},
              {**group, "curvature": torch.zeros(2)}, {**group, "runs": [0, "1"]}, {**group, "runs": [0]},
              {**group, "runs": [0, 0]}]
    # of another dtype: results.csv would report a float32 history's 0.94999999, a diverged_at of 0.5
    edits += [{**group, "history": group["history"].float()}, {**group, "diverged_at": group["diverged_at"] + 0.5},
              {**group, "diverged_at": group["diverged_at"].int()}, {**group, "diverged_at": group["diverged_at"] - 1},
              {**group, "curvature": group["curvature"].long()}, {**group, "curvature": group["curvature"].float()}]
    for edit in edits:
        refused(tmp_path, source, {**good, "groups": {0: edit}})
    for groups in ({"0": group}, {0: [group]}, {0: group, 1: group}):
        refused(tmp_path, source, {**good, "groups": groups})
    # not the plan's groups: what only the plan tells (network() reads no plan)
    for groups in ({}, {1: group}, {0: {**group, "runs": [1, 0]}}, {0: {**group, "runs": [0, 2]}},
                   {0: {**group, "log_steps": [1, 2, 3, 5]}}):
        refused(tmp_path, source, {**good, "groups": groups}, network=False)
    refused(tmp_path, source, {**good, "config": {k: v for k, v in good["config"].items() if k != "values"}})


def test_a_finished_group_diverged_at_a_step_it_never_logged_is_refused(saved, tmp_path):
    """diverged_at is 0 (never) or the log step that first found a run's loss not finite: a step past the group's last
    (10**12 of 4) or between its log steps would be reported in results.csv as where the run diverged."""
    source, good = saved["done"]
    group = good["groups"][0]
    assert group["log_steps"] == [4] and not group["diverged_at"].any()
    for step in (3, 5, 10**12, -1):
        diverged = group["diverged_at"].clone()
        diverged[1] = step
        refused(tmp_path, source, {**good, "groups": {0: {**group, "diverged_at": diverged}}},
                match=f"holds step {step} in its group 0's 'diverged_at', not 0 (never) or one of its log steps")
    for steps in ([0], [-4], [4.0], [True], ["4"], [4, 2], [4, 4]):
        history = group["history"].expand(len(steps), -1, -1)
        refused(tmp_path, source, {**good, "groups": {0: {**group, "log_steps": steps, "history": history}}},
                match="'log_steps', not increasing step numbers")
    group_log = {**group, "log_steps": [8], "diverged_at": torch.tensor([8, 0])}  # not the plan's steps
    refused(tmp_path, source, {**good, "groups": {0: group_log}}, network=False, match="other log steps")
    diverged = {**group, "diverged_at": torch.tensor([4, 0])}  # one a run can leave: read, and reported so
    folder = tmp_path / "diverged"
    shutil.copytree(source, folder)
    torch.save({**good, "groups": {0: diverged}}, folder / "checkpoint.pt")
    assert [r["diverged_at"] for r in runner.sweep(config(folder, resume=True)).results.rows] == [4, None]


def test_a_group_in_training_that_does_not_add_up_is_refused(saved, tmp_path):
    source, good = saved["midway"]
    current = good["current"]
    assert current is not None and current["step"] == 4
    edits = [{k: v for k, v in current.items() if k != key} for key in checkpoints.CURRENT]
    edits += [{**current, "group": 1}, {**current, "step": 3}, {**current, "step": 9, "epoch": 9},
              {**current, "logged": 0}, {**current, "history": current["history"][:, :1]},
              {**current, "diverged_at": torch.zeros(1, dtype=torch.int64)},
              # diverged at a step not logged (logged: 4 of 4), or at none
              *({**current, "diverged_at": torch.tensor([0, step])} for step in (3, 5, 10**12, -1)),
              {**current, "model": {**current["model"], "U": torch.zeros(3, 3, 2)}},
              {**current, "optimizer": {"state": {}, "param_groups": []}}]
    for edit in edits:
        refused(tmp_path, source, {**good, "current": edit}, network=False)


def test_a_group_in_training_refused_says_why(saved, tmp_path):
    # "history of shape (30, 10, 4), not (30, 10, 4)" left out the dtype; torch's load_state_dict error was cut to its
    # header ("Error(s) in loading state_dict for TanhNetEnsemble:")
    source, good = saved["midway"]
    current = good["current"]
    refused(tmp_path, source, {**good, "current": {**current, "history": current["history"].float()}}, network=False,
            match="(history float32 of shape ")
    wrong_U = {**current, "model": {**current["model"], "U": torch.zeros(3, 3, 2)}}
    refused(tmp_path, source, {**good, "current": wrong_U}, network=False, match="(size mismatch for U: ")


@pytest.mark.parametrize("name", ["midway", "midway_sgd", "midway_adam"])
def test_a_group_in_training_whose_optimizer_settings_are_not_the_plans_is_refused(saved, tmp_path, name):
    """The group's optimizer is loaded as saved: an lr, momentum, weight decay, beta or eps (one number or one per
    network) edited there would train on silently while results.csv reports the plan's."""
    from torch_tanhnet.training.setup import UPDATE

    source, good = saved[name]
    group = good["current"]["optimizer"]["param_groups"][0]
    keys = [key for key in UPDATE if key in group]
    assert len(keys) >= 3 and ("beta1" in keys) == (name == "midway_adam"), keys
    for key in keys:
        value = group[key]
        if isinstance(value, torch.Tensor):  # K numbers: one network's changed, one number, another dtype
            other = value.clone()
            other[-1] += 0.25
            bads = [other, float(value[0]), value.float()]
        else:  # one number: another, the same for each network as a tensor, a string
            bads = [value / 2 + 0.01, torch.full((4,), value, dtype=torch.float64), "x"]
        for bad in [*bads, "missing"]:
            edited = {k: v for k, v in group.items() if k != key}
            if not isinstance(bad, str) or bad != "missing":
                edited[key] = bad
            optimizer = {**good["current"]["optimizer"], "param_groups": [edited]}
            refused(tmp_path, source, {**good, "current": {**good["current"], "optimizer": optimizer}}, network=False,
                    match=f"its optimizer's {key} is ")


def test_an_optimizer_setting_of_another_kind_is_refused_saying_the_kinds_differ(saved, tmp_path):
    """An lr of K numbers edited to a list of the same numbers read 'lr is [0.1, 0.5], not the settings' [0.1, 0.5]':
    the kinds are named, and the message is not cut short."""
    source, good = saved["midway_sgd"]
    group = good["current"]["optimizer"]["param_groups"][0]
    lr = group["lr"]
    numbers = repr(lr.tolist())
    assert len(lr) == 8 and len(numbers) <= 40, numbers
    for bad, kind in ((lr.tolist(), f"a list, {numbers}"), (0.1, "a number, 0.1"),
                      (lr.float(), "8 numbers as a float32 tensor, "), (lr[:2], "2 numbers as a tensor, [0.1, 0.1]")):
        optimizer = {**good["current"]["optimizer"], "param_groups": [{**group, "lr": bad}]}
        refused(tmp_path, source, {**good, "current": {**good["current"], "optimizer": optimizer}}, network=False,
                match=f"its optimizer's lr is {kind}")
        refused(tmp_path, source, {**good, "current": {**good["current"], "optimizer": optimizer}}, network=False,
                match=f"where the settings hold 8 numbers as a tensor, {numbers}; hand-edited?")


@pytest.mark.parametrize("group", [0, 1], ids=["first-group", "second-group"])
def test_a_ctrl_c_while_a_groups_data_are_drawn_stops_there_and_resumes_to_the_same_sweep(tmp_path, monkeypatch, group):
    """Each run's data set is drawn alone (~0.25 ms): a group of 10⁵ runs took half a minute to set up, and 3·10⁶
    runs over ten minutes, while a Ctrl-C or SIGTERM waited for the training loop's first check."""
    import dataclasses
    import os
    import signal

    from torch_tanhnet.sweep import data

    values = {"hidden": [1, 2], "n_samples": [20], "epochs": [2]}
    whole = runner.sweep(SweepConfig(values=values, seeds=list(range(600)), logdir=str(tmp_path / "whole"),
                                     progress=False, gallery=0))
    real, drawn = data.SplitCache.__call__, []

    def draw(self, config):
        drawn.append(config)
        if len(drawn) == 600 * group + 300:  # mid-way through the group's 600 runs
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, config)

    monkeypatch.setattr(data.SplitCache, "__call__", draw)
    stopped = SweepConfig(values=values, seeds=list(range(600)), logdir=str(tmp_path / "stopped"), progress=False,
                          gallery=0)
    result = runner.sweep(stopped)
    assert result.interrupted and len(drawn) < 600 * group + 600  # stopped before the group's data were all drawn
    state = checkpoint.load(tmp_path / "stopped" / "checkpoint.pt")
    assert sorted(state["groups"]) == list(range(group)) and state["current"] is None and not state["complete"]
    monkeypatch.undo()
    with pytest.raises(ConfigError) as info:  # from Python every setting counts as given: the seeds too
        runner.sweep(dataclasses.replace(stopped, resume=True, seeds=list(range(10))))
    assert str(info.value) == ("seeds: [0, 1, 2, ..., 9] (10 values) differs from the checkpoint's "
                               "[0, 1, 2, ..., 599] (600 values); a resumed sweep keeps its settings")
    resumed = runner.sweep(dataclasses.replace(stopped, resume=True))
    for g in whole.groups:
        assert torch.equal(resumed.groups[g].params["U"], whole.groups[g].params["U"])


def test_a_resumed_sweeps_noise_is_compared_by_what_it_means(saved):
    """--noise 0.05 on a resumed xor sweep (saved with the data set's own noise, None) was refused as differing
    from [None]; train.py's --resume compares by meaning. Per data set: None is not 0.05 for moons (0.1)."""
    import copy

    _, state = saved["done"]
    for noise in ([0.05], [None]):
        merged = checkpoints.resume_settings(config("x", resume=True, values={**VALUES, "noise": noise}), state,
                                             {"values"})
        assert merged.values.get("noise", [None]) == [None]  # the saved values are kept
    for noise in ([0.06], [0.05, 0.1], [None, 0.05]):
        with pytest.raises(ConfigError, match=r"^noise: .* differs from the checkpoint's \[None\]"):
            checkpoints.resume_settings(config("x", resume=True, values={**VALUES, "noise": noise}), state,
                                        {"values"})
    both = copy.deepcopy(state)
    both["config"]["values"]["dataset"] = ["xor", "moons"]
    values = {**VALUES, "dataset": ["xor", "moons"], "noise": [0.05]}  # 0.05 is xor's own noise, not moons'
    with pytest.raises(ConfigError, match=r"^noise: \[0.05\] differs"):
        checkpoints.resume_settings(config("x", resume=True, values=values), both, {"values"})


def test_a_run_number_as_pandas_or_torch_hold_it(saved):
    """results.csv read by pandas gives run numbers as NumPy integers: network() takes them, and 0-d integer
    tensors, as ints; a bool, a float, a string are refused in one line."""
    import numpy as np

    folder = saved["done"][0]
    want = checkpoints.network(folder, 1)
    for run in (np.int64(1), np.int32(1), torch.tensor(1)):
        got = checkpoints.network(folder, run)
        for name in "UbWc":
            assert torch.equal(getattr(got, name), getattr(want, name))
    for run in (True, np.bool_(True), torch.tensor(True), 1.0, np.float64(1.0), "1", torch.tensor([1])):
        with pytest.raises(CheckpointError, match=r"^run must be an integer, got "):
            checkpoints.network(folder, run)
