"""A sweep's --data files: read once and used for every group; hashed into its checkpoint, so that a resumed sweep
refuses other data (another a.csv, an edited one) and accepts the same files named another way; the processes of a
torchrun launch refuse data that differ between them."""

import csv
import os
import signal

import numpy as np
import pytest
import torch

from torch_tanhnet.sweep import runner
from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.training import checkpoint
from torch_tanhnet.training.config import ConfigError
from torch_tanhnet.training.data import DataError
from torch_tanhnet.training.world import World


def write(path, seed, flip=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(30, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) ^ int(flip)
    path.write_text("x1,x2,label\n" + "".join(f"{p:.4f},{q:.4f},{v}\n" for (p, q), v in zip(X, y)))


def config(logdir, data=("a.csv",), **kw):
    return SweepConfig(**{**dict(values={"data": list(data), "hidden": [1, 2], "epochs": [5]}, seeds=[0],
                                 logdir=str(logdir), progress=False, gallery=0), **kw})


def losses(logdir):
    return [row["loss/test"] for row in csv.DictReader(open(logdir / "results.csv"))]


def stop_before_second_group(group):
    if group.index == 1:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the sweep saves its checkpoint and stops


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.csv", 0)
    return tmp_path


def test_a_data_file_edited_while_the_sweep_runs_changes_nothing(folder):
    reference = losses(runner.sweep(config(folder / "ref")).logdir)

    def edit(group):
        if group.index == 1:
            write(folder / "a.csv", 5, flip=True)

    assert losses(runner.sweep(config(folder / "sw"), on_group=edit).logdir) == reference


def test_a_resumed_sweep_refuses_other_data_in_its_files(folder):
    assert runner.sweep(config(folder / "sw"), on_group=stop_before_second_group).interrupted
    saved = checkpoint.load(folder / "sw" / "checkpoint.pt")["data"]
    assert [p for p, _ in saved] == ["a.csv"]
    write(folder / "a.csv", 5)  # edited, or another directory's a.csv
    with pytest.raises(ConfigError, match="^data: the data in 'a.csv' differ from the checkpoint's; "):
        runner.sweep(config(folder / "sw", resume=True))


def test_a_resumed_sweep_accepts_its_files_named_another_way(folder, monkeypatch):
    write(folder / "b.csv", 1)
    reference = losses(runner.sweep(config(folder / "ref", data=("a.csv", "b.csv"))).logdir)
    assert runner.sweep(config(folder / "sw", data=("a.csv", "b.csv")), on_group=stop_before_second_group).interrupted
    (folder / "elsewhere").mkdir()
    monkeypatch.chdir(folder / "elsewhere")
    swapped = config(folder / "sw", data=(str(folder / "b.csv"), str(folder / "a.csv")), resume=True)
    with pytest.raises(ConfigError, match="the data in '.*b.csv' differ from the checkpoint's \\('a.csv'\\)"):
        runner.sweep(swapped, given={"values", "resume", "logdir"})  # other data at each place: refused
    again = config(folder / "sw", data=(str(folder / "a.csv"), "../b.csv"), resume=True)
    assert losses(runner.sweep(again, given={"values", "resume", "logdir"}).logdir) == reference


def test_a_checkpoint_older_than_the_hashes_compares_the_names_as_before(folder, monkeypatch):
    assert runner.sweep(config(folder / "sw"), on_group=stop_before_second_group).interrupted
    state = checkpoint.load(folder / "sw" / "checkpoint.pt")
    del state["data"]
    torch.save(state, folder / "sw" / "checkpoint.pt")
    with pytest.raises(ConfigError, match="differs from the checkpoint's \\['a.csv'\\]"):
        runner.sweep(config(folder / "sw", data=(str(folder / "a.csv"),), resume=True),
                     given={"values", "resume", "logdir"})
    assert runner.sweep(config(folder / "sw", resume=True), given={"resume", "logdir"}).results is not None


def test_processes_that_read_different_data_refuse_it(folder):
    """World.agree, as two processes would answer it: the other holds the same hash (the sum doubles each), or
    another (here, each sum's other part is ones)."""
    same = World(0, 2, all_reduce=lambda t: t.add_(t.clone()))
    runner.prepare(config(folder / "ok"), same)
    other = World(0, 2, all_reduce=lambda t: t.add_(torch.ones_like(t)))
    with pytest.raises(DataError, match="^the 2 processes read different data from data a.csv "):
        runner.prepare(config(folder / "bad"), other)


def test_a_files_runs_leave_the_built_in_data_sets_settings_empty_in_results_csv(folder):
    """results.csv said dataset=moons, n_samples=500 for every run of a --data sweep (TrainConfig's defaults, which
    train.py refuses beside --data): a reader filtering by dataset got the file's runs as moons'."""
    runner.sweep(config(folder / "out"))
    rows = list(csv.DictReader(open(folder / "out" / "results.csv")))
    assert len(rows) == 2 and all(r["data"] == "a.csv" for r in rows)
    assert all((r["dataset"], r["n_samples"], r["noise"]) == ("", "", "") for r in rows), rows


def test_a_random_sweep_that_draws_no_setting_of_a_file_trains_what_it_drew(folder):
    """--random 1 over two files: the data check hashed every file given, the plan had read only the drawn one
    (KeyError)."""
    write(folder / "b.csv", 1)
    result = runner.sweep(config(folder / "out", data=("a.csv", "b.csv"), random=1))
    assert [r["data"] for r in result.results.rows] == ["b.csv"]  # one setting drawn, of one seed
    resumed = runner.sweep(config(folder / "out", data=("a.csv", "b.csv"), random=1, resume=True))
    assert resumed.already_complete


def test_a_random_sweep_resumed_with_part_of_its_files_renamed_is_refused_and_keeps_all_of_them(folder):
    """After the draw fix the checkpoint hashed only the drawn files: a resume naming just the drawn file another way
    (./b.csv) matched their count, the saved list shrank to it, the draws changed, and group 0's networks were
    reported under other settings without a word (review)."""
    write(folder / "b.csv", 1)
    values = {"data": ["a.csv", "b.csv"], "hidden": [2, 3], "lr": [0.1, 0.2, 0.3, 0.4, 0.5], "epochs": [2]}
    start = dict(seeds=[0], progress=False, gallery=0, random=4, random_seed=80)
    whole = runner.sweep(SweepConfig(values=values, logdir=str(folder / "ref"), **start))
    assert runner.sweep(SweepConfig(values=values, logdir=str(folder / "sw"), **start),
                        on_group=stop_before_second_group).interrupted
    given = {"values", "resume", "logdir"}
    with pytest.raises(ConfigError, match=r"^data: \['./b.csv'\] differs from the checkpoint's \['a.csv', 'b.csv'\]"):
        runner.sweep(SweepConfig(values={"data": ["./b.csv"]}, resume=True, logdir=str(folder / "sw"),
                                 progress=False), given=given)
    resumed = runner.sweep(SweepConfig(values={"data": ["./a.csv", "./b.csv"]}, resume=True, logdir=str(folder / "sw"),
                                       progress=False), given=given)
    keys = ("hidden", "lr", "loss/test")
    assert [tuple(r[k] for k in keys) for r in resumed.results.rows] == [tuple(r[k] for k in keys)
                                                                          for r in whole.results.rows]
    saved = checkpoint.load(folder / "sw" / "checkpoint.pt")["config"]["values"]["data"]
    assert saved == ["./a.csv", "./b.csv"]  # every file, as named now
