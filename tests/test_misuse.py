"""A student's or a PyTorch user's likely slips get one line that says what to write (an error audit of 308 of
them): the other form of a dtype, a file given as a data set and a data set as a file, a dict for a TrainConfig,
swapped arguments, the module where its parameters go."""

import pytest
import torch

from torch_tanhnet import TanhNet, TanhNetEnsemble
from torch_tanhnet.ensemble import EnsembleAdam, EnsembleSGD
from torch_tanhnet.sweep.state import network
from torch_tanhnet.training import TrainConfig, train
from torch_tanhnet.training.config import ConfigError
from torch_tanhnet.training.data import DataError, load_csv


@pytest.mark.parametrize("call, error, line", [
    (lambda: TanhNet(dtype="float64"), TypeError, "dtype must be a real floating-point dtype (torch.float16, "
     "torch.bfloat16, torch.float32 or torch.float64), got 'float64' (write dtype=torch.float64)"),
    (lambda: TanhNetEnsemble(3, dtype="float32"), TypeError, "dtype must be a real floating-point dtype "
     "(torch.float16, torch.bfloat16, torch.float32 or torch.float64), got 'float32' (write dtype=torch.float32)"),
    (lambda: TrainConfig(dtype=torch.float64).validate(), ConfigError, "dtype: must be a string, got torch.float64 "
     "(write 'float64')"),
    (lambda: TrainConfig(dataset="points.csv").validate(), ConfigError, "dataset: unknown dataset 'points.csv'; "
     "choose from moons, circles, xor, spiral, gauss (a file: data points.csv)"),
    (lambda: load_csv("moons"), DataError, "data file 'moons' does not exist ('moons' is a built-in data set: "
     "dataset moons)"),
    (lambda: train({"epochs": 3}), TypeError, "train takes a TrainConfig, got dict (TrainConfig(**settings) makes "
     "one)"),
    (lambda: network(0, "sweeps/x"), TypeError, "network(logdir, run): logdir must be the sweep's folder, got int 0"),
    (lambda: EnsembleSGD(TanhNetEnsemble(3), lr=0.1), TypeError, "EnsembleSGD takes the networks' parameters, got "
     "the module itself: pass ensemble.parameters()"),
    (lambda: EnsembleAdam(TanhNetEnsemble(3)), TypeError, "EnsembleAdam takes the networks' parameters, got the "
     "module itself: pass ensemble.parameters()"),
])
def test_a_likely_slip_is_one_line_saying_what_to_write(call, error, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as e:
        call()
    said = e.value.for_python() if hasattr(e.value, "for_python") else str(e.value)
    assert said == line


def test_a_train_py_checkpoint_loaded_as_a_state_dict_says_to_load_its_model(tmp_path):
    """The likeliest load_state_dict slip: torch's error listed the checkpoint's 12 keys over three lines."""
    from torch_tanhnet.training import checkpoint

    train(TrainConfig(epochs=3, logdir=str(tmp_path / "run"), progress=False, image_interval=10**6))
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"^this is a train.py checkpoint, not a model's state dict: load its "
                                         r"model, model.load_state_dict\(checkpoint\['model'\]\)$"):
        TanhNet().load_state_dict(state)
    TanhNet().load_state_dict(state["model"])


def test_resuming_a_folder_that_does_not_exist_says_so(tmp_path, monkeypatch, capsys):
    """A typo in --logdir with --resume said "no checkpoint at 'runs_typo/demo/checkpoint.pt'" (train.py) and
    "no sweep checkpoint in 'sw_typo' (expected checkpoint.pt)" (sweep.py)."""
    from conftest import load_script

    monkeypatch.chdir(tmp_path)
    for script, what in (("train", "run"), ("sweep", "sweep")):
        assert load_script(script).main(["--resume", "--logdir", "typo/demo"]) == 2
        assert capsys.readouterr().err == (f"{script}.py: error: 'typo/demo' does not exist: --resume continues a "
                                           f"{what} in an existing folder (check the path, or leave out --resume to "
                                           "start one there)\n")


def test_a_momentum_given_with_adam_is_refused_or_warned_of(tmp_path, monkeypatch, capsys):
    """--optimizer adam --momentum 0.5 trained Adam, which reads no momentum, without a word: refused on the command
    line, as --noise with --data is; from Python a momentum other than the default is warned of."""
    from conftest import load_script

    monkeypatch.chdir(tmp_path)
    assert load_script("train").main(["--optimizer", "adam", "--momentum", "0.5", "--dry-run"]) == 2
    assert capsys.readouterr().err == ("train.py: error: argument --momentum: applies to --optimizer sgd, not to "
                                       "adam; leave it out\n")
    with pytest.warns(UserWarning, match=r"^momentum=0.5 applies to optimizer sgd, not to adam: it is ignored$"):
        train(TrainConfig(optimizer="adam", momentum=0.5, dry_run=True, progress=False))
    from torch_tanhnet.sweep.results import train_command

    row = {"optimizer": "adam", "momentum": 0.5, "seed": 3}
    assert "--momentum" not in train_command({**_defaults(), **row})  # a sweep's printed command stays pastable


def _defaults():
    from torch_tanhnet.sweep.space import DEFAULTS

    return dict(DEFAULTS)


def test_train_py_takes_full_as_a_batch_size_as_sweep_py_does(tmp_path, monkeypatch, capsys):
    """sweep.py takes and prints --batch-size full; train.py refused it ("invalid int value: 'full'")."""
    from conftest import load_script

    monkeypatch.chdir(tmp_path)
    assert load_script("train").main(["--batch-size", "full", "--epochs", "3", "--logdir", "run", "--no-progress"]) \
        == 0, capsys.readouterr().err
    from torch_tanhnet.training import checkpoint

    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt")["config"]["batch_size"] is None


class _Rows:
    """A value whose repr spans lines, as a tensor's or an array's of several rows does."""

    def __repr__(self):
        return "_Rows(\n    1,\n    2,\n)"


def _given_anything():
    import torch_tanhnet

    ens = TanhNetEnsemble(3)
    return {
        "in_features": lambda v: TanhNet(v),
        "dtype": lambda v: TanhNet(dtype=v),
        "models": lambda v: TanhNetEnsemble(v),
        "seeds": lambda v: TanhNetEnsemble(3, seeds=v),
        "ensemble[[0, v]]": lambda v: ens[[0, v]],
        "nesterov": lambda v: EnsembleSGD(ens.parameters(), lr=0.1, nesterov=v),
        "foreach": lambda v: EnsembleSGD(ens.parameters(), lr=0.1, foreach=v),
        "amsgrad": lambda v: EnsembleAdam(ens.parameters(), amsgrad=v),
        "betas": lambda v: EnsembleAdam(ens.parameters(), betas=v),
        "reference_equations": lambda v: torch_tanhnet.reference_equations(v),
        "hessian's dtype": lambda v: torch_tanhnet.hessian(TanhNet(), torch.zeros(4, 2), torch.ones(4, 1), dtype=v),
    }


@pytest.mark.parametrize("value", [torch.ones(4, 4), _Rows()], ids=["a 2-D tensor", "a repr of lines"])
@pytest.mark.parametrize("where", list(_given_anything()))
def test_a_value_whose_repr_spans_lines_is_shown_on_the_messages_one_line(where, value):
    """The messages showed what came as repr writes it: a tensor or array of several rows (or anything whose repr
    has lines) made the one-line error several lines."""
    with pytest.raises((TypeError, ValueError)) as info:
        _given_anything()[where](value)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
