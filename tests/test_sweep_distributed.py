"""A sweep under torchrun: two gloo processes train disjoint shares; rank 0's results equal a one-process sweep's."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.metrics import CURVATURE
from torch_tanhnet.sweep.runner import merge, sweep
from torch_tanhnet.training import checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sweep.py"
pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")

ARGS = ["--hidden", "2", "3", "--lr", "0.5", "1.5", "--seeds", "3", "--n-samples", "80", "--epochs", "120",
        "--batch-size", "full", "25", "--dtype", "float64", "--log-interval", "20", "--gallery", "1",
        "--device", "cpu"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_processes_equal_one_process(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT), *ARGS,
           "--logdir", "two", "--no-progress"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("sweep: 24 runs") == 1 and r.stdout.count("view it with") == 1  # rank 0 alone speaks
    one = sweep(SweepConfig(values={"hidden": [2, 3], "lr": [0.5, 1.5], "n_samples": [80], "epochs": [120],
                                    "batch_size": [None, 25], "dtype": ["float64"]}, seeds=[0, 1, 2],
                            log_interval=20, gallery=1, device="cpu", logdir=str(tmp_path / "one"), progress=False))
    a, b = rows(tmp_path / "one" / "results.csv"), rows(tmp_path / "two" / "results.csv")
    assert [x["run"] for x in b] == [str(i) for i in range(24)]
    for x, y in zip(a, b):
        for key in x:
            if key in ("loss/test", "loss/train", "accuracy/test", "accuracy/train", *CURVATURE):
                assert float(x[key]) == pytest.approx(float(y[key]), rel=1e-12, abs=1e-12), (x["run"], key)
            else:
                assert x[key] == y[key], (x["run"], key)
    pa, pb = checkpoint.load(tmp_path / "one" / "checkpoint.pt"), checkpoint.load(tmp_path / "two" / "checkpoint.pt")
    assert pb["complete"] and not list((tmp_path / "two").glob("checkpoint.rank*"))  # the shares, merged
    for g in pa["groups"]:
        assert pa["groups"][g]["runs"] == pb["groups"][g]["runs"]
        for name in "UbWc":
            torch.testing.assert_close(pa["groups"][g]["params"][name], pb["groups"][g]["params"][name], rtol=1e-12,
                                       atol=1e-12)
    assert one.results.rows[0]["run"] == 0


def test_merge_puts_each_process_share_back_in_run_order():
    # process 0 trained runs 0, 2, 4 of a group and process 1 runs 1, 3: the group as one, in run order
    from torch_tanhnet.sweep.group import GroupResult
    from torch_tanhnet.sweep.plan import make_plan

    plan = make_plan(SweepConfig(values={}, seeds=[0, 1, 2, 3, 4]), torch.device("cpu"))

    def share(runs):
        K = len(runs)
        value = torch.tensor(runs, dtype=torch.float64)
        params = {"U": value.view(K, 1, 1).expand(K, 3, 2).clone(), "b": value.view(K, 1).expand(K, 3).clone(),
                  "W": value.view(K, 1, 1).expand(K, 1, 3).clone(), "c": value.view(K, 1).clone()}
        history = value.view(1, K, 1).expand(2, K, 4).clone()
        return GroupResult(runs, params, history, [10, 20], torch.zeros(K, dtype=torch.int64)).as_dict()

    merged = merge(plan, [{0: share([0, 2, 4])}, {0: share([1, 3])}])[0]
    assert merged.runs == [0, 1, 2, 3, 4]
    assert merged.params["c"].view(-1).tolist() == [0, 1, 2, 3, 4]
    assert merged.history[1, :, 2].tolist() == [0, 1, 2, 3, 4]


def test_a_reader_gone_under_torchrun_ends_quietly(tmp_path):
    """`torchrun ... sweep.py ... | head -1`: rank 0 ended 141 as a cut pipe does, and torchrun reported it as a
    failed process (ChildFailedError, its traceback, exit 1) though the sweep had finished and kept its results."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           "--seeds", "2", "--n-samples", "20", "--epochs", "3", "--gallery", "0", "--logdir", "out", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before anything was written
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0 and "Traceback" not in err and "ChildFailedError" not in err, err
    assert len(rows(tmp_path / "out" / "results.csv")) == 2
