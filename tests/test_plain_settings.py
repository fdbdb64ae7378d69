"""Settings given as NumPy or torch numbers, or as paths, are taken as the plain Python values they stand for:
every setting reaches a checkpoint or sweep.json, and a NumPy object there made a checkpoint that
``torch.load(weights_only=True)`` refuses, a run that could not be resumed."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from torch_tanhnet.sweep import runner
from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.space import Range
from torch_tanhnet.sweep.state import network
from torch_tanhnet.training import checkpoint
from torch_tanhnet.training.checkpoint import CheckpointError
from torch_tanhnet.training.config import ConfigError, TrainConfig
from torch_tanhnet.training.loop import train

PLAIN = (bool, int, float, str, type(None))


def plain_all_through(value) -> bool:
    """Whether ``value`` is plain Python data all the way down (tensors aside): what weights_only and JSON read."""
    if isinstance(value, dict):
        return all(plain_all_through(k) and plain_all_through(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(plain_all_through(v) for v in value)
    return isinstance(value, torch.Tensor) or type(value) in PLAIN


# every kind of NumPy and torch scalar, and paths and str subclasses, for settings of each type
STANDS_FOR = [
    ("lr", np.float64(0.5), 0.5), ("lr", np.float32(0.25), 0.25), ("lr", np.float16(0.5), 0.5),
    ("lr", torch.tensor(0.5), 0.5), ("lr", torch.tensor(0.5, dtype=torch.float64, requires_grad=True), 0.5),
    ("lr", np.int64(1), 1), ("lr", torch.tensor(2), 2), ("noise", np.float32(0.125), 0.125),
    ("momentum", np.float64(0), 0.0), ("dist_timeout", np.int32(30), 30),
    ("hidden", np.int64(4), 4), ("hidden", np.uint8(4), 4), ("hidden", torch.tensor(4), 4),
    ("epochs", np.int32(7), 7), ("batch_size", np.int16(8), 8), ("seed", np.uint32(2**32 - 1), 2**32 - 1),
    ("standardize", np.bool_(True), True), ("standardize", torch.tensor(True), True), ("resume", np.False_, False),
    ("data", Path("points.csv"), "points.csv"), ("logdir", Path("runs/x"), "runs/x"),
    ("dataset", np.str_("xor"), "xor"), ("optimizer", np.str_("adam"), "adam"),
]


@pytest.mark.parametrize("name,given,expected", STANDS_FOR)
def test_a_number_or_path_that_stands_for_a_setting_is_taken_as_plain_python(name, given, expected):
    config = TrainConfig(**{name: given})
    config.validate()
    value = getattr(config, name)
    assert value == expected and type(value) is type(expected), (name, given, value)
    assert plain_all_through(config.as_dict())


@pytest.mark.parametrize("name,given", [
    ("hidden", np.float64(3.0)), ("hidden", torch.tensor(3.0)), ("epochs", np.bool_(True)),
    ("standardize", np.int64(1)), ("standardize", torch.tensor(1)), ("lr", np.bool_(True)),
    ("lr", torch.tensor(True)), ("lr", torch.tensor([0.5])), ("lr", np.array([0.5])), ("lr", np.complex128(1)),
    ("lr", torch.tensor(1 + 0j)), ("data", b"points.csv"), ("lr", np.float64("nan")),
])
def test_a_value_of_another_kind_is_still_one_config_error(name, given):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{name: given}).validate()
    assert e.value.field == name and "\n" not in str(e.value)


def small(logdir, **kw):
    return TrainConfig(**{**dict(dataset="xor", n_samples=60, epochs=2, log_interval=1, image_interval=10**6,
                                 logdir=str(logdir), progress=False), **kw})


def test_a_run_given_numpy_settings_saves_plain_data_and_resumes(tmp_path):
    train(small(tmp_path / "run", lr=np.float64(0.5), momentum=np.float32(0.5), hidden=np.int64(2),
                standardize=np.bool_(True), noise=torch.tensor(0.05)))
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")  # weights_only: it would refuse a NumPy object
    assert plain_all_through(state["config"]) and state["config"]["lr"] == 0.5
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["config"]["hidden"] == 2
    assert train(small(tmp_path / "run", epochs=4, resume=True), given={"epochs", "resume", "logdir"}).epoch == 4


def test_a_checkpoint_an_older_version_wrote_with_numpy_settings_is_resumed(tmp_path):
    """Older versions saved a setting given as np.float64 as a NumPy object: its number is read back as Python's."""
    train(small(tmp_path / "run"))
    path = tmp_path / "run" / "checkpoint.pt"
    state = checkpoint.load(path)
    state["config"] = {**state["config"], "lr": np.float64(0.5), "hidden": np.int64(3), "standardize": np.bool_(0),
                       "test_fraction": np.float64(0.2), "n_samples": np.int32(60)}
    state["metrics"] = {k: np.float64(v) for k, v in state["metrics"].items()}
    torch.save(state, path)
    with pytest.raises(Exception):  # noqa: B017 - what weights_only does with it
        torch.load(path, weights_only=True)
    loaded = checkpoint.load(path)
    assert plain_all_through({k: v for k, v in loaded.items() if k not in ("model", "optimizer", "rng")})
    assert loaded["config"]["test_fraction"] == 0.2 and type(loaded["config"]["hidden"]) is int
    assert train(small(tmp_path / "run", epochs=4, resume=True), given={"epochs", "resume", "logdir"}).epoch == 4


def test_a_checkpoint_an_older_version_wrote_with_numpy_strings_is_resumed(tmp_path):
    """Older versions kept a str subclass as given: dataset=np.str_("xor") was saved as a NumPy object."""
    train(small(tmp_path / "run"))
    path = tmp_path / "run" / "checkpoint.pt"
    state = checkpoint.load(path)
    state["config"] = {**state["config"], "dataset": np.str_("xor"), "optimizer": np.str_("sgd"),
                       "dtype": np.str_("float32"), "lr": np.float64(0.5)}
    torch.save(state, path)
    with pytest.raises(Exception):  # noqa: B017 - what weights_only does with it
        torch.load(path, weights_only=True)
    loaded = checkpoint.load(path)
    assert plain_all_through(loaded["config"]) and type(loaded["config"]["dataset"]) is str
    assert loaded["config"]["dataset"] == "xor" and loaded["config"]["dtype"] == "float32"
    assert train(small(tmp_path / "run", epochs=4, resume=True), given={"epochs", "resume", "logdir"}).epoch == 4


@pytest.mark.parametrize("obj,named", [(np.bytes_(b"xor"), "BytesDType"), (np.datetime64("2020-01-01"), "DateTime"),
                                       (np.array([0.5]), "ndarray"), (np.complex128(1j), "Complex")])
def test_a_refused_numpy_object_is_named_not_what_is_allowed(tmp_path, obj, named):
    """NumPy numbers and strings are read (their scalar constructor and np.dtype allowed): the message names the
    refused object, not those."""
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": checkpoint.FORMAT, "config": {"dataset": obj, "lr": np.float64(0.5)}}, path)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    message = str(e.value)
    assert named in message and not re.search(r"numpy\.dtype\b|scalar", message), message
    assert "\n" not in message and str(path) in message


def test_a_checkpoint_holding_other_objects_is_one_line_naming_them(tmp_path):
    path = tmp_path / "checkpoint.pt"
    for obj in (torch.nn.Linear(1, 1), np.array([0.5]), Path("x")):
        torch.save({"format": checkpoint.FORMAT, "config": {"lr": obj}}, path)
        with pytest.raises(CheckpointError) as e:
            checkpoint.load(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value), str(e.value)


def test_a_sweep_given_numpy_and_torch_values_holds_plain_python_everywhere(tmp_path):
    config = SweepConfig(values={"lr": np.array([0.1, 0.5]), "hidden": torch.tensor([2, 3]),
                                 "standardize": [np.bool_(True)], "noise": (np.float32(0.25), None),
                                 "momentum": [Range(np.float64(0), np.float32(0.5))]},
                         seeds=np.arange(3), random=np.int64(4), random_seed=np.uint8(1), solved_at=np.float32(0.5),
                         log_interval=np.int64(5), checkpoint_seconds=torch.tensor(1.0), gallery=np.int32(1),
                         resume=np.False_, logdir=tmp_path / "sweep", memory_limit=np.float64(1e12))
    config.validate()
    assert plain_all_through(config.as_dict()), config.as_dict()
    assert config.values["lr"] == [0.1, 0.5] and config.seeds == [0, 1, 2] and config.logdir == str(tmp_path / "sweep")
    json.dumps(config.as_dict())


def test_a_sweep_of_numpy_values_writes_a_checkpoint_that_reads_back(tmp_path):
    result = runner.sweep(SweepConfig(values={"dataset": ["xor"], "epochs": [2], "n_samples": [20],
                                              "lr": list(np.array([0.1, 0.5]))}, seeds=np.arange(2),
                                      logdir=str(tmp_path / "sweep"), progress=False, gallery=0))
    assert result.results.rows[3]["lr"] == 0.5
    state = torch.load(tmp_path / "sweep" / "checkpoint.pt", weights_only=True)
    assert plain_all_through(state["config"])
    assert network(tmp_path / "sweep", 3).hidden_features == 3


@pytest.mark.parametrize("name,given", [
    ("seeds", 3), ("seeds", "012"), ("seeds", {0, 1}), ("seeds", [0.0, 1.0]), ("seeds", np.array([[0, 1]])),
    ("log_interval", "10"), ("log_interval", 2.5), ("solved_at", "0.9"), ("gallery", None), ("random", 1.5),
    ("sessions", 1), ("progress", 1), ("values", [("lr", [0.1])]), ("values", {"lr": 0.1}),
    ("values", {"lr": [Range("a", 1)]}),
])
def test_a_sweep_setting_of_the_wrong_kind_is_one_config_error(name, given):
    with pytest.raises(ConfigError) as e:
        SweepConfig(**{name: given}, **({"random": 2} if name == "values" else {})).validate()
    assert "\n" not in str(e.value)
