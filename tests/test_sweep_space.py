"""What a sweep trains: the grid, random draws, runs, groups, names; bad settings refused before any work."""

import json
import math
import os
import re
import time

import numpy as np
import pytest
import torch
from conftest import load_script

from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.plan import SweepTooLarge, make_plan
from torch_tanhnet.sweep.space import DEFAULTS, Range, grid, runs, sample, swept, unique_names
from torch_tanhnet.training.config import ConfigError, TrainConfig
from torch_tanhnet.training.data import DataError

CPU = torch.device("cpu")


def test_the_grid_is_every_combination_in_field_order_the_last_fastest():
    settings = grid({"lr": [0.1, 0.5, 1.0], "hidden": [1, 2]})
    assert [(s["hidden"], s["lr"]) for s in settings] == [(1, 0.1), (1, 0.5), (1, 1.0), (2, 0.1), (2, 0.5), (2, 1.0)]
    assert all(s["dataset"] == "moons" and s["epochs"] == DEFAULTS["epochs"] for s in settings)  # train.py's defaults
    assert swept(settings) == ["hidden", "lr"]


def test_runs_are_setting_major_and_each_is_train_py_config_with_its_seed():
    settings = grid({"hidden": [2, 3]})
    found = runs(settings, [5, 7, 9], TrainConfig(device="cpu"))
    assert [(r.index, r.setting, r.seed) for r in found] == [(0, 0, 5), (1, 0, 7), (2, 0, 9), (3, 1, 5), (4, 1, 7),
                                                             (5, 1, 9)]
    assert found[4].config == TrainConfig(device="cpu", hidden=3, seed=7)


def test_random_draws_are_reproducible_within_their_ranges_and_lists():
    values = {"lr": [Range(0.01, 3.0, log=True)], "hidden": [Range(1, 8)], "optimizer": ["sgd", "adam"],
              "momentum": [Range(0.0, 0.9)]}
    a, b = sample(values, 200, seed=3), sample(values, 200, seed=3)
    assert a == b and a != sample(values, 200, seed=4)
    assert all(0.01 <= s["lr"] <= 3.0 and 0 <= s["momentum"] <= 0.9 for s in a)
    assert {s["hidden"] for s in a} == set(range(1, 9))  # integers, both ends reached
    assert {s["optimizer"] for s in a} == {"sgd", "adam"}
    below_01 = sum(s["lr"] < 0.1 for s in a) / len(a)  # log-uniform: log(0.1/0.01)/log(3/0.01) ≈ 0.40 of the draws
    assert 0.28 < below_01 < 0.52


def test_names_lead_with_what_differs_and_stay_unique():
    settings = grid({"hidden": [2, 3], "lr": [0.5], "init_scale": [1.0, 2.0]})
    assert unique_names(settings, swept(settings)) == ["hidden=2,init=1", "hidden=2,init=2", "hidden=3,init=1",
                                                       "hidden=3,init=2"]
    assert unique_names(grid({}), []) == ["all"]
    close = [{**DEFAULTS, "lr": 0.100001}, {**DEFAULTS, "lr": 0.1000012}]  # alike at 4 digits
    assert unique_names(close, ["lr"]) == ["0:lr=0.1", "1:lr=0.1"]


def test_folder_names_are_safe_unique_and_readable_whatever_the_setting_names():
    """A setting's name becomes pictures/gallery-<name>.png, <name>/ and seeds/<name>/: a path separator, a leading
    dot, a colon or a name too long for a file system would break the sweep's last step, after all its training."""
    from torch_tanhnet.sweep.space import LONGEST, folder_names

    safe = ["hidden=2,lr=0.5", "all", "data=a.csv,lr=1e-05", "n=100,wd=1e+03"]
    assert folder_names(safe) == safe  # already file names: kept as they are
    odd = ["data=dd/b.csv", "data=/tmp/x/dd/b.csv", "data=dd\\b.csv", "data=dd_b.csv", "data=dd:b.csv",
           "data=../b.csv", ".data=b.csv", "..", "data=b c*?<>|\"'.csv", "data=été.csv", "data=\udcff.csv",
           "data=" + "x" * 500 + ".csv", "data=" + "x" * 500 + "y.csv", "data=B.csv", "data=b.csv", "0:lr=0.1",
           "1:lr=0.1", "data=" + "/deep" * 100 + "/b.csv"]
    folders = folder_names(odd)
    assert len({f.lower() for f in folders}) == len(odd)  # unique, also where case is ignored (data=B.csv, b.csv)
    for name, folder in zip(odd, folders):
        assert set(folder) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=,.+-_"), folder
        assert not folder.startswith(".") and len(folder) <= LONGEST + 9, folder
    # readable: the name with _ for what is unsafe, and a hash of the name only where two came out alike
    assert folders[0].startswith("data=dd_b.csv-") and folders[3] == "data=dd_b.csv"  # alike once safe, told apart
    assert folders[1] == "data=_tmp_x_dd_b.csv" and folders[6] == "_data=b.csv"
    assert folders[15] == "0_lr=0.1" and folders[16] == "1_lr=0.1"
    assert folders[11].endswith("xxxx.csv") and folders[12].endswith("xy.csv") and ".." in folders[11]  # cut in the
    long = folder_names(["data=" + "x" * 500 + ".csv", "data=" + "x" * 250 + "y" + "x" * 249 + ".csv"])  # middle
    assert long[0] != long[1] and all(len(f) == LONGEST + 9 for f in long)  # alike once cut: told apart by hashes
    assert folders[13].startswith("data=B.csv-") and folders[14].startswith("data=b.csv-")  # alike ignoring case
    assert folder_names(["data=dd/b.csv"]) == folder_names(["data=dd/b.csv"])  # the same name every time


def test_a_sweep_over_data_files_in_folders_writes_every_output(tmp_path, monkeypatch):
    """--data a.csv dd/b.csv (or absolute paths) trained in full, then failed writing
    pictures/gallery-data=dd/b.csv.png, on every --resume too: each output named after a setting goes in the plan's
    folder for it."""
    from torch_tanhnet.sweep.runner import sweep

    rows = "x1,x2,label\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(12))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dd").mkdir()
    for name in ("a.csv", "dd/b.csv", "dd_b.csv", "dd/c c.csv"):
        (tmp_path / name).write_text(rows)
    data = ["a.csv", "dd/b.csv", "dd_b.csv", str(tmp_path / "dd" / "c c.csv")]
    for sessions in ("runs", "settings"):
        logdir = tmp_path / f"out-{sessions}"
        result = sweep(SweepConfig(values={"data": data, "epochs": [2]}, seeds=[0, 1], logdir=str(logdir),
                                   progress=False, gallery=1, sessions=sessions))
        folders = result.plan.folders
        assert len(set(folders)) == 4 and folders[0] == "data=a.csv"
        pictures = sorted(p.name for p in (logdir / "pictures").iterdir())
        assert pictures == sorted([*(f"gallery-{f}.png" for f in folders), "solved.png"])
        made = {p.name for p in logdir.iterdir() if p.is_dir()} - {"pictures", "seeds"}
        assert made == set(folders) and all(any((logdir / f).glob("events.out.tfevents.*")) for f in folders)
        if sessions == "runs":
            assert {p.name for p in (logdir / "seeds").iterdir()} == set(folders)
        assert [s["folder"] for s in json.loads((logdir / "sweep.json").read_text())["settings"]] == folders
    dry = sweep(SweepConfig(values={"data": data, "epochs": [2]}, seeds=[0], logdir=str(tmp_path / "dry"),
                            progress=False, gallery=1, dry_run=True))
    assert dry.results is not None and (tmp_path / "dry" / "pictures" / f"gallery-{dry.plan.folders[1]}.png").exists()


def test_one_data_file_written_two_ways_is_refused_as_given_twice(tmp_path, monkeypatch):
    """a.csv, ./a.csv, its absolute path and a link to it are one data set: trained as four settings, it would be
    four rows of results for one."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("x1,x2,label\n0,0,0\n1,1,1\n0,1,1\n1,0,0\n")
    (tmp_path / "b.csv").write_text((tmp_path / "a.csv").read_text())
    (tmp_path / "link.csv").symlink_to(tmp_path / "a.csv")
    os.link(tmp_path / "a.csv", tmp_path / "hard.csv")  # a hard link: the same file by another path
    for other in ("./a.csv", str(tmp_path / "a.csv"), "link.csv", "../" + tmp_path.name + "/a.csv", "hard.csv"):
        with pytest.raises(ConfigError, match=f"^data: '{other}' is given twice \\(as 'a.csv'\\)"):
            SweepConfig(values={"data": ["a.csv", "b.csv", other]}).validate()
    SweepConfig(values={"data": ["a.csv", "b.csv"]}).validate()  # two files: two settings, even holding alike rows


def test_runs_of_one_width_share_a_group_and_widths_come_narrowest_first():
    plan = make_plan(SweepConfig(values={"hidden": [8, 2], "lr": [0.1, 1.0], "init_scale": [1.0, 3.0]},
                                 seeds=[0, 1, 2]), CPU)
    assert [g.hidden for g in plan.groups] == [2, 8]
    assert [len(g.runs) for g in plan.groups] == [12, 12]
    assert plan.n_runs == 24 and sorted(r.index for g in plan.groups for r in g.runs) == list(range(24))
    assert plan.groups[0].settings == [4, 5, 6, 7]  # hidden 2 is the second value given


def test_what_changes_the_loop_splits_groups():
    plan = make_plan(SweepConfig(values={"epochs": [10, 20], "n_samples": [100, 200], "optimizer": ["sgd", "adam"]},
                                 seeds=[0]), CPU)
    assert len(plan.groups) == 8
    plan = make_plan(SweepConfig(values={"dataset": ["moons", "xor"], "noise": [0.1, 0.2], "momentum": [0.0, 0.9]},
                                 seeds=[0]), CPU)
    assert len(plan.groups) == 1  # data sets, noise, momentum: per network


def test_log_steps_are_every_interval_and_the_last():
    plan = make_plan(SweepConfig(values={"epochs": [25]}, log_interval=10, seeds=[0]), CPU)
    assert plan.log_steps(plan.groups[0]) == [10, 20, 25]


BAD = [
    (dict(values={"lr": [-0.1]}), "argument --lr: must be a positive number, got -0.1"),
    (dict(values={"hidden": [2, 0]}), "argument --hidden: must be a positive integer, got 0"),
    (dict(values={"momentum": [1.0]}), "argument --momentum: must be in [0, 1), got 1.0"),
    (dict(values={"init_scale": [0.0]}), "argument --init-scale: must be a positive number, got 0.0"),
    (dict(values={"dataset": ["moons", "blobs"]}), "argument --dataset: unknown dataset 'blobs'"),
    (dict(values={"test_fraction": [1.5]}), "argument --test-fraction: must be between 0 and 1"),
    (dict(values={"lr": []}), "argument --lr: the grid is empty: no values given"),
    (dict(values={"lr": [0.1, 0.1]}), "argument --lr: 0.1 is given twice"),
    (dict(values={"standardize": [True, False, True]}), "argument --standardize: on (True) is given twice"),
    (dict(values={"lr": [Range(0.1, 1.0)]}), "argument --lr: a range (0.1:1) needs --random N"),
    (dict(values={"lr": [Range(1.0, 0.1)]}, random=5), "argument --lr: a range needs LOW ≤ HIGH"),
    (dict(values={"lr": [Range(0.0, 1.0, True)]}, random=5), "argument --lr: a log range needs LOW > 0"),
    (dict(values={"momentum": [Range(0.0, 1.0)]}, random=5), "argument --momentum: must be in [0, 1), got 1.0"),
    (dict(values={"optimizer": [Range(0.0, 1.0)]}, random=5), "argument --optimizer: takes values, not a range"),
    (dict(random=0), "argument --random: must be a positive integer, got 0"),
    (dict(random_seed=-1), "argument --random-seed: must be an integer in [0, 2**32), as a run's seed is, got -1"),
    (dict(random_seed=2**64), "argument --random-seed: must be an integer in [0, 2**32), as a run's seed is, got "),
    (dict(seeds=[]), "argument --seeds: must be at least 1, got 0"),
    (dict(seeds=[1, 1]), "argument --seeds: seed 1 is given twice"),
    (dict(seeds=[-1]), "argument --seeds: each seed must be an integer in [0, 2**32)"),
    (dict(solved_at=0.0), "argument --solved-at: must be an accuracy in (0, 1]"),
    (dict(log_interval=0), "argument --log-interval: must be a positive integer, got 0"),
    (dict(resume=True), "argument --resume: needs --logdir"),
    (dict(values={"n_samples": [3], "test_fraction": [0.1]}, seeds=[0]), "too few samples for the split"),
    (dict(values={"n_samples": [500, 1]}), "--n-samples must be at least 2, got 1"),
    (dict(values={"data": ["missing.csv"]}), "data file 'missing.csv' does not exist"),
    (dict(values={"wings": [1]}), "unknown setting 'wings'"),
    # an integer setting's range: its ends rounded inward (1.5:2.5 drew 1 below it, 2.5:2.7 drew 2 above it)
    (dict(values={"hidden": [Range(2.5, 2.7)]}, random=1),
     "argument --hidden: the range 2.5:2.7 holds no integer, and this setting takes integers"),
    (dict(values={"hidden": [Range(-0.5, 0.5)]}, random=1), "argument --hidden: must be a positive integer, got 0"),
    # random draws are different settings: more draws than the values make is refused
    (dict(values={"hidden": [2, 3]}, random=5),
     "argument --random: 5 draws, but the values make 2 different settings; draw at most that many"),
    (dict(values={"hidden": [Range(1.5, 2.5)]}, random=2),
     "argument --random: 2 draws, but the values make 1 different setting;"),
    (dict(values={"hidden": [2, Range(2, 4)], "optimizer": ["sgd", "adam"]}, random=7),
     "argument --random: 7 draws, but the values make 6 different settings;"),
    # the runs counted before any is built (10⁹ settings filled 24 GiB of memory, then the OOM killer)
    (dict(random=10**9, values={"lr": [Range(0.1, 1.0)]}, seeds=[0, 1]),
     "the sweep would train 2,000,000,000 runs (--random 1000000000 × 2 seeds); at most 10,000,000"),
    (dict(values={"lr": [i / 1000 + 0.001 for i in range(1000)], "momentum": [i / 1200 for i in range(1000)],
                  "weight_decay": [i / 100 for i in range(1000)]}, seeds=[0]),
     "the sweep would train 1,000,000,000 runs (1,000,000,000 settings × 1 seed); at most 10,000,000"),
]


@pytest.mark.parametrize("kwargs, message", BAD, ids=[m for _, m in BAD])
def test_bad_settings_are_refused_with_train_py_words_before_any_work(kwargs, message):
    with pytest.raises((ConfigError, DataError)) as e:
        make_plan(SweepConfig(**kwargs), CPU)
    text = e.value.for_command_line()  # what sweep.py prints (str() names a TrainConfig field as Python does)
    assert message in text and "\n" not in text


def test_a_sweep_that_would_not_fit_in_memory_is_refused_from_the_estimate():
    config = SweepConfig(values={"hidden": [64], "n_samples": [100_000]}, seeds=list(range(1000)),
                         memory_limit=2**30)  # 1000 networks × 100 000 samples: several GiB of data alone
    with pytest.raises(SweepTooLarge) as e:
        make_plan(config, CPU)
    assert "the sweep would need about" in str(e.value) and "but 1.0 GiB is free" in str(e.value)
    assert "hidden 64, 1000 runs of 100000 samples" in str(e.value)
    config.memory_limit = 2**40
    make_plan(config, CPU)  # the same sweep where it fits: planned, nothing allocated


@pytest.mark.parametrize("name,values", [("lr", [1, 1.0]), ("momentum", [0, 0.0]), ("noise", [0.1, np.float64(0.1)]),
                                         ("init_scale", [2, np.int64(2)]), ("hidden", [3, np.int64(3)])])
def test_a_value_given_twice_in_another_type_is_refused(name, values):
    with pytest.raises(ConfigError, match=f"^{name}: .* is given twice"):
        SweepConfig(values={name: values}).validate()


@pytest.mark.parametrize("name,values", [("weight_decay", [0.0, -0.0]), ("momentum", [-0.0, 0]),
                                         ("noise", [0.0, np.float64(-0.0)]), ("lr", [2, 2.0])])
def test_a_value_equal_to_another_is_refused_whatever_its_sign_of_zero(name, values):
    """0.0 and -0.0 are the same setting (train.py trains them alike, and both are taken as 0.0): given both, it
    would be trained twice."""
    with pytest.raises(ConfigError, match=f"^{name}: .* is given twice"):
        SweepConfig(values={name: values}).validate()


@pytest.mark.parametrize("name,values", [("n_samples", [2**53, 2**53 + 1]), ("epochs", [2**60, 2**60 + 1]),
                                         ("lr", [1, 1.0000000000000002]), ("standardize", [True, False])])
def test_values_that_differ_are_not_taken_for_repeats(name, values):
    """Integers that one float cannot tell apart (2**53 and 2**53 + 1), floats one ulp apart: two settings."""
    config = SweepConfig(values={name: values})
    config.validate()
    assert config.values[name] == values and len(config.settings()) == 2


# train.py's refusals that the sweep lacked: it trained them, wrote their settings into results.csv and printed a
# command for run 0 that train.py then refused

@pytest.mark.parametrize("name,values", [("n_samples", [50]), ("noise", [0.1, 0.2]), ("dataset", ["circles"])])
def test_a_built_in_data_sets_setting_beside_a_data_file_is_refused_as_train_py_refuses_it(tmp_path, monkeypatch,
                                                                                         name, values):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("".join(f"{i / 10},{1 - i / 10},{i % 2}\n" for i in range(40)))
    flag = "--" + name.replace("_", "-")
    with pytest.raises(ConfigError) as info:
        make_plan(SweepConfig(values={"data": ["a.csv"], name: values}, seeds=[0]), torch.device("cpu"))
    assert str(info.value) == f"{name}: applies to the built-in data sets, not to data 'a.csv'; leave it out"
    assert info.value.for_command_line() == (f"argument {flag}: applies to the built-in data sets, not to --data "
                                             "'a.csv'; leave it out")
    with pytest.raises(ConfigError, match=f"^{name}: applies to the built-in data sets, not to data 'a.csv'"):
        from torch_tanhnet.training import train

        train(TrainConfig(data="a.csv", epochs=1, progress=False, logdir=str(tmp_path / "run"),
                          **{name: values[0]}), given={name, "data"})


@pytest.mark.parametrize("scale,dtype,what", [(1e39, "float32", "weights"), (1e37, "float32", "loss"),
                                              (1e307, "float64", "loss"), (1e309, "float64", None)])
def test_an_initial_scale_too_large_for_the_dtype_is_refused_as_train_py_refuses_it(scale, dtype, what):
    """1e39 in float32: every run diverged at its first logged step, from infinite weights."""
    values = {"init_scale": [1.0, scale], "dtype": [dtype]}
    if what is None:  # past float64: refused as a value, as train.py refuses it
        with pytest.raises(ConfigError) as info:
            make_plan(SweepConfig(values=values, seeds=[0, 1]), torch.device("cpu"))
        assert info.value.for_command_line() == "argument --init-scale: must be a positive number, got inf"
        return
    with pytest.raises(ConfigError) as info:
        make_plan(SweepConfig(values=values, seeds=[0, 1]), torch.device("cpu"))
    hint = " or --dtype float64" if dtype == "float32" else ""
    assert info.value.for_command_line() == (f"argument --init-scale: {scale:g} makes the initial {what} infinite or "
                                             f"NaN in {dtype}; choose a smaller --init-scale{hint}")
    torch.manual_seed(3)
    before = torch.get_rng_state()
    make_plan(SweepConfig(values={"init_scale": [1.0, scale / 1e6], "dtype": [dtype]}, seeds=[0, 1]),
              torch.device("cpu"))  # a scale whose weights and loss fit: planned, the global generator left alone
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("r", [Range(1.5, 4.5), Range(1.5, 4.5, True), Range(2, 5), Range(0.5, 2.2, True)])
def test_an_integer_settings_range_draws_different_integers_within_it(r):
    """1.5:2.5 drew 1, below its low end (int() cut the ends); and a draw equal to an earlier one was trained again as
    another setting (the same runs, counted twice)."""
    lo, hi = math.ceil(r.low), math.floor(r.high)
    for seed in range(20):
        drawn = [s["hidden"] for s in sample({"hidden": [r]}, hi - lo + 1, seed)]
        assert sorted(drawn) == list(range(lo, hi + 1))


def test_random_draws_never_repeat_a_setting():
    settings = sample({"hidden": [2, 3], "optimizer": ["sgd", "adam"], "lr": [0.1, 0.5]}, 8, 0)
    assert len({tuple(s.items()) for s in settings}) == 8
    assert sample({"hidden": [2, 3], "lr": [Range(0.1, 1.0)]}, 5, 3) == sample({"hidden": [2, 3],
                                                                              "lr": [Range(0.1, 1.0)]}, 5, 3)


def test_a_range_of_one_number_counts_as_one_setting_and_draws_end():
    """count() took any range of numbers for endless: --random 3 --lr 0.5:0.5 drew 0.5 again forever."""
    from torch_tanhnet.sweep.space import count

    assert count({"lr": [Range(0.5, 0.5)], "hidden": [2, 3]}) == 2
    with pytest.raises(ConfigError, match=r"^random: 3 draws, but the values make 2 different settings"):
        SweepConfig(values={"lr": [Range(0.5, 0.5)], "hidden": [2, 3]}, random=3).validate()
    with pytest.raises(ConfigError, match=r"^random: 4 draws, but the values gave only 3 different "):
        sample({"lr": [Range(0.5, 0.5000000000000002)]}, 4, 0)  # three floats: refused after the repeats


def test_the_time_estimate_counts_drawing_every_runs_data(monkeypatch):
    """Each run draws its own data set (~0.25 ms): 30000 runs were estimated "under a second" and took 7 s. A draw
    made to take 2 ms: the estimate holds at least that for each run's, and planning itself times none."""
    from torch_tanhnet.sweep import plan as planning

    real, calls = planning.load_split, []

    def slow(config, *args):
        calls.append(config.seed)
        time.sleep(0.002)
        return real(config, *args)

    monkeypatch.setattr(planning, "load_split", slow)
    plan = make_plan(SweepConfig(values={"lr": [0.1, 0.5], "n_samples": [20]}, seeds=list(range(100))), CPU)
    assert calls == [0]  # the two settings share one data set for seed 0: drawn once, nothing timed
    assert planning._setup_seconds(plan) >= 0.002 * 100  # 100 seeds × one data setting
    one = make_plan(SweepConfig(values={"n_samples": [20]}, seeds=[0]), CPU)
    assert planning._setup_seconds(one) == 0.0  # one seed: its draw was made when planning


def test_the_time_estimate_times_the_trainers_step_on_as_many_networks_as_its_budget_allows(monkeypatch):
    """Timed on 256 networks and scaled up, the per-call cost was multiplied with the work: 888 s printed for a
    sweep that trained in 83 s (groups of 2000 networks on 80 samples). The probe takes the trainer's own step (the
    fused pass asked directly) on every network up to 2**23 hidden activations' worth, 256 at least."""
    from torch_tanhnet.sweep import group
    from torch_tanhnet.sweep import plan as planning

    real, probed = group.set_gradients, []

    def counting(model, X, y):
        probed.append(model.U.shape[0])
        return real(model, X, y)

    monkeypatch.setattr(group, "set_gradients", counting)
    small = make_plan(SweepConfig(values={"n_samples": [100]}, seeds=list(range(2000))), CPU)  # 80 training rows
    planning._training_seconds(small, 256)
    assert set(probed) == {2000}
    probed.clear()
    wide = make_plan(SweepConfig(values={"n_samples": [4000], "hidden": [300]}, seeds=list(range(300))), CPU)
    planning._training_seconds(wide, 256)
    assert set(probed) == {256}


SWEEP_BAD = [dict(progress="x"), dict(gallery=-1), dict(log_interval=0), dict(solved_at=2.0), dict(random=0),
             dict(seeds=[1, 1]), dict(seeds="abc"), dict(resume=True), dict(logdir=""), dict(sessions="all"),
             dict(values={"lr": [Range(0.1, 1.0)]}), dict(values={"lr": 0.5}), dict(values={"lr": [0.1, 0.1]}),
             dict(values={"hidden": [2, 3]}, random=5), dict(random=10**9, values={"lr": [Range(0.1, 1.0)]}),
             dict(values={"hidden": [Range(2.5, 2.7)]}, random=1), dict(dist_timeout=0.0), dict(random_seed=-1)]


@pytest.mark.parametrize("kwargs", SWEEP_BAD, ids=[str(k) for k in SWEEP_BAD])
def test_a_bad_sweep_setting_is_named_in_python_words_from_python_and_as_a_real_flag_from_the_command_line(kwargs):
    # SweepConfig(progress='x') said "argument --progress", a flag sweep.py does not have (it has --no-progress),
    # and every sweep error spoke in flags to a Python caller
    with pytest.raises(ConfigError) as e:
        make_plan(SweepConfig(**kwargs), CPU)
    assert "--" not in str(e.value) and "\0" not in str(e.value)
    line = e.value.for_command_line()
    assert "\0" not in line
    flags = set(re.findall(r"--[a-z][a-z-]*", line))  # every flag the line names is one of sweep.py's
    known = set(load_script("sweep").build_parser()._option_string_actions)
    assert flags and flags <= known, (line, flags - known)


def test_a_sweep_started_with_a_negative_random_seed_before_the_check_resumes():
    # its draws are made from the saved value, as they were: only a new sweep is refused
    SweepConfig(random_seed=-1, resume=True, logdir="somewhere").validate()
    with pytest.raises(ConfigError, match="random_seed: must be an integer in"):
        SweepConfig(random_seed=-1).validate()


def test_names_carry_the_digits_that_tell_typed_values_apart_and_number_the_rest():
    """--lr 0.123456 0.123457: the table printed two rows both reading 0.1235 (hostile campaign); names and table
    now give them six digits. Draws alike even to six (a random sweep) are numbered, the table showing the number."""
    from torch_tanhnet.sweep.space import field_digits, unique_names

    typed = [{"lr": 0.123456, "hidden": 3}, {"lr": 0.123457, "hidden": 3}]
    assert field_digits(typed, "lr") == 6 and unique_names(typed, ["lr"]) == ["lr=0.123456", "lr=0.123457"]
    plain = [{"lr": 0.1}, {"lr": 0.5}, {"lr": 1.0}]
    assert field_digits(plain, "lr") == 4 and unique_names(plain, ["lr"]) == ["lr=0.1", "lr=0.5", "lr=1"]
    drawn = [{"lr": 0.1234560001}, {"lr": 0.1234560002}]
    assert unique_names(drawn, ["lr"]) == ["0:lr=0.1235", "1:lr=0.1235"]


def test_the_table_shows_each_settings_own_digits_or_number(tmp_path):
    from torch_tanhnet.sweep.results import table
    from torch_tanhnet.sweep.runner import sweep

    for values, random, first in (({"lr": [0.123456, 0.123457]}, None, ["0.123456", "0.123457"]),
                                  ({"lr": [Range(0.1234560, 0.1234562)]}, 2, ["0", "1"])):
        result = sweep(SweepConfig(values={**values, "epochs": [2]}, random=random, seeds=[0],
                                   logdir=str(tmp_path / str(random)), progress=False, gallery=0))
        rows = table(result.plan, result.results.summaries).splitlines()
        assert rows[0].split()[0] == ("#" if random else "lr")
        assert [re.split(r"\s+", r)[0] for r in rows[1:]] == first


def test_names_find_each_fields_digits_once_not_once_a_setting(monkeypatch):
    """field_digits ran once per setting and field, over every setting: 19 s to name 3000 random settings (a review)."""
    from torch_tanhnet.sweep import space

    calls = []
    real = space.field_digits
    monkeypatch.setattr(space, "field_digits", lambda settings, field: calls.append(field) or real(settings, field))
    settings = [{"lr": 0.001 * (i + 1), "momentum": 0.5} for i in range(300)]
    assert len(set(space.unique_names(settings, ["lr", "momentum"]))) == 300
    assert sorted(calls) == ["lr", "momentum"]


def test_the_heat_maps_labels_tell_values_apart():
    from torch_tanhnet.sweep.board import axis_labels

    assert axis_labels([0.1, 0.5], 4) == ["0.1", "0.5"]
    assert axis_labels([0.123456, 0.123457], 6) == ["0.123456", "0.123457"]
    assert axis_labels([0.1234567, 0.1234568, 0.5], 6) == ["0.123457 [1]", "0.123457 [2]", "0.5 [3]"]
