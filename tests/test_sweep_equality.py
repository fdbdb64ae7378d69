"""Run k of a sweep is the run train.py trains with the same settings and seed: weights and metrics equal."""

import pytest
import torch

from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.runner import sweep
from torch_tanhnet.sweep.state import network
from torch_tanhnet.training import TrainConfig, train

CASES = {
    # full batch, SGD with momentum; width, lr, initial scale and weight decay vary (the last three per network)
    "sgd, full batch, float64": (dict(dtype=["float64"], n_samples=[80], epochs=[40], hidden=[2, 3], lr=[0.2, 0.9],
                                      init_scale=[1.0, 2.5], weight_decay=[0.0, 0.01]), [0, 4], 1e-12),
    # mini-batches with an uneven last one, adam, two data sets and standardised features in one ensemble
    "adam, mini-batches, float64": (dict(dtype=["float64"], n_samples=[61], epochs=[6], batch_size=[16],
                                         optimizer=["adam"], lr=[0.05], dataset=["xor", "circles"],
                                         standardize=[True], momentum=[0.5]), [3, 11], 1e-12),
    # train.py's defaults but short: float32
    "defaults, float32": (dict(epochs=[60], lr=[0.5, 2.0]), [0, 1, 2], 2e-5),
}


@pytest.mark.parametrize("case", list(CASES))
def test_runs_equal_train_py_runs_with_the_same_settings_and_seed(tmp_path, case):
    values, seeds, tol = CASES[case]
    result = sweep(SweepConfig(values=values, seeds=seeds, logdir=str(tmp_path / "sweep"), progress=False,
                               gallery=0))
    rows = result.results.rows
    for row in [rows[i] for i in sorted({*range(0, len(rows), 5), len(rows) - 1})]:  # several runs, every group
        given = {k: row[k] for k in values if not (k == "momentum" and row["optimizer"] == "adam")}  # Adam reads
        config = TrainConfig(**given, seed=row["seed"], logdir=str(tmp_path / f"run{row['run']}"),  # no momentum
                             progress=False, image_interval=10**6)
        alone = train(config)
        net = network(tmp_path / "sweep", row["run"])
        for name in "UbWc":
            torch.testing.assert_close(getattr(net, name), getattr(alone.model, name).detach(), rtol=tol, atol=tol,
                                       msg=lambda m: f"run {row['run']} {name}: {m}")
        for tag in ("loss/test", "accuracy/test", "loss/train", "accuracy/train"):
            assert row[tag] == pytest.approx(alone.metrics[tag], rel=tol, abs=tol), (row["run"], tag)
        for tag in ("loss_hessian/min_eigenvalue", "loss_hessian/max_eigenvalue"):  # train.py's, at its last step
            assert row[tag] == pytest.approx(alone.metrics[tag], rel=tol, abs=tol), (row["run"], tag)
        assert row["steps"] == alone.global_step


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_groups_gradients_are_autograds_numbers(dtype):
    # set_gradients asks the fused pass directly; loss.sum().backward() multiplies the same numbers by ε̄_k = 1
    from torch_tanhnet.ensemble import TanhNetEnsemble
    from torch_tanhnet.sweep.group import set_gradients

    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 40, 2, generator=g, dtype=torch.float64).to(dtype)
    y = (torch.rand(5, 40, 1, generator=g) > 0.5).to(dtype)
    model = TanhNetEnsemble(5, 2, 3, dtype=dtype, seeds=[0, 1, 2, 3, 4])
    model.loss(X, y).sum().backward()
    want = [p.grad.clone() for p in model.parameters()]
    set_gradients(model, X, y)
    for p, w in zip(model.parameters(), want):
        assert torch.equal(p.grad, w)


def test_a_sweep_on_the_torch_ops_path_equals_the_c_kernels(tmp_path, monkeypatch):
    # the torch-ops implementations are what CUDA (and a machine without a C compiler) runs: same runs, same results
    from torch_tanhnet.kernels import dispatch

    values = dict(dtype=["float64"], n_samples=[61], epochs=[25], batch_size=[None, 20], hidden=[2, 3],
                  lr=[0.3, 1.0], optimizer=["sgd", "adam"])
    config = dict(seeds=[0, 1], progress=False, gallery=1, log_interval=5)
    c_rows = sweep(SweepConfig(values=values, logdir=str(tmp_path / "c"), **config)).results.rows
    monkeypatch.setattr(dispatch, "c_kernels", lambda dtype: None)
    X = torch.zeros(2, 4, 2, dtype=torch.float64)
    params = (torch.zeros(2, 3, 2), torch.zeros(2, 3), torch.zeros(2, 1, 3), torch.zeros(2, 1))
    assert dispatch.ensemble_fused_implementation(X, *(p.double() for p in params), X[..., :1]) is dispatch.torch_ops
    assert dispatch.ensemble_evaluate_implementation(X) is dispatch.torch_ops
    ops_rows = sweep(SweepConfig(values=values, logdir=str(tmp_path / "ops"), **config)).results.rows
    for a, b in zip(c_rows, ops_rows):
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (a["run"], key)
            else:
                assert b[key] == value, (a["run"], key)
    for run in (0, len(c_rows) - 1):
        for name in "UbWc":
            torch.testing.assert_close(getattr(network(tmp_path / "ops", run), name),
                                       getattr(network(tmp_path / "c", run), name), rtol=1e-9, atol=1e-12)
