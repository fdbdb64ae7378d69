"""Files written whole or not at all get a new file's permissions (0666 less the umask), as open() gives them: they
came out 0600 whatever the umask (tempfile.mkstemp's, kept by the rename), so that another user, or a TensorBoard
service, could not read a run's checkpoint, its HParams files, a sweep's sweep.json or its events."""

import os
import stat

import pytest

from torch_tanhnet.files import write_atomic
from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.runner import sweep
from torch_tanhnet.training import train
from torch_tanhnet.training.config import TrainConfig


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o640
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_atomic_gives_a_new_files_permissions(tmp_path, umask_027):
    write_atomic(tmp_path / "a", b"x")
    assert mode(tmp_path / "a") == umask_027
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temporary left


def test_a_runs_and_a_sweeps_files_are_readable_as_the_umask_says(tmp_path, umask_027):
    train(TrainConfig(epochs=2, n_samples=40, logdir=str(tmp_path / "run"), progress=False))
    sweep(SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=[0, 1], logdir=str(tmp_path / "sw"),
                      progress=False, gallery=0))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"checkpoint.pt", "sweep.json", "results.csv"} <= names and any("hparams" in n for n in names)
    assert {p.relative_to(tmp_path).as_posix(): oct(mode(p)) for p in files if mode(p) != umask_027} == {}
