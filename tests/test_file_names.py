"""File names whose bytes are not UTF-8 (Python keeps them as lone surrogates): TensorBoard's writer refused them in
a run's HParams and its default folder's name, a sweep's results.csv was left with its header alone (written in
place, and failing on the name), and a printed command named another file. And any name a printed command holds
gives its own bytes back in a shell."""

import csv
import os
import subprocess
import sys

import pytest
from conftest import SCRIPTS, load_script

from torch_tanhnet.training.wording import shell

NAME = os.fsdecode(b"pts\xe9.csv")  # as Python reads it from the command line


@pytest.fixture
def points(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(os.fsencode(NAME), "w") as f:
        f.writelines(f"{(i % 7) / 3 - 1:.3f},{(i % 5) / 2 - 1:.3f},{int((i % 7) / 3 - 1 > (i % 5) / 2 - 1)}\n"
                     for i in range(60))
    return tmp_path


@pytest.mark.parametrize("name", ["plain", "with space", "-dash", "it's", NAME, os.fsdecode(b"\xff'\\x")])
def test_a_printed_name_gives_its_own_bytes_back_in_a_shell(name):
    r = subprocess.run(["bash", "-c", f"printf %s {shell(name)}"], capture_output=True, timeout=30)
    assert r.stdout == os.fsencode(("./" if name.startswith("-") else "") + name)


def test_a_run_on_a_data_file_named_in_bytes_that_are_not_utf8(points, capsys):
    assert load_script("train").main(["--data", NAME, "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    (folder,) = (points / "runs").iterdir()
    assert folder.name.endswith("-pts\\xe9-e2") and list(folder.glob("events.out.tfevents.*"))
    assert f"--logdir {shell(folder.relative_to(points))}" in out


def test_a_sweep_on_a_data_file_named_in_bytes_that_are_not_utf8(points, capsys):
    assert load_script("sweep").main(["--data", NAME, "--seeds", "2", "--epochs", "2", "--gallery", "0",
                                      "--logdir", "sw", "--no-progress"]) == 0
    out = capsys.readouterr().out
    with open(points / "sw" / "results.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {r["data"] for r in rows} == {"pts\\xe9.csv"}
    assert "--data $'pts\\xe9.csv'" in out  # the command that trains run 0 alone, on that very file


def test_a_run_folder_named_in_bytes_that_are_not_utf8_is_one_line(tmp_path, monkeypatch, capsys):
    """TensorBoard's writer encodes a folder's name as UTF-8: such a --logdir (or a dry run's folder under such a
    TMPDIR) was a traceback once the run had begun (a sweep, which writes its events otherwise, takes it)."""
    monkeypatch.chdir(tmp_path)
    folder = os.fsdecode(b"bad\xe9name")
    assert load_script("train").main(["--logdir", folder, "--epochs", "2", "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        "train.py: error: argument --logdir: 'bad\\xe9name': its name is not UTF-8 text, and TensorBoard writes its "
        "events only into a folder whose name is; choose another --logdir\n")
    assert list(tmp_path.iterdir()) == []


def test_a_sweeps_lines_name_its_folder_as_a_shell_writes_it(tmp_path):
    """The lines naming a folder whose bytes are not UTF-8 read `logs: sw\\udce9` beside `--logdir $'sw\\xe9'`."""
    r = subprocess.run([sys.executable, SCRIPTS / "sweep.py", "--logdir", b"sw\xe9", "--seeds", "2", "--epochs", "2",
                        "--gallery", "0", "--no-progress"], cwd=tmp_path, capture_output=True, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0 and "\\udc" not in out, out
    assert "logs: sw\\xe9\n" in out and "results: sw\\xe9/results.csv" in out and "--logdir $'sw\\xe9'" in out
