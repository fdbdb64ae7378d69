"""scripts/bench.py on bad input: one line naming the flag and the value, before any benchmarking, and never a
file of the user's overwritten. The benchmark itself is replaced by a stub where only the command line is tested."""

import json
import os
from pathlib import Path

import pytest
from conftest import load_script

import torch_tanhnet.benchmark
from torch_tanhnet.benchmark import Report, Result

TINY = ["--sizes", "64", "--rounds", "1", "--min-time", "0.001", "--no-compile", "--no-jax", "--no-memory"]


def tiny_with(args: list[str]) -> list[str]:
    """TINY with ``args`` in place of its own values of the flags they give (a flag given twice is refused)."""
    given = {a for a in args if a.startswith("--")}
    kept, skipping = [], False
    for a in TINY:
        if a.startswith("--"):
            skipping = a in given
        if not skipping:
            kept.append(a)
    return [*kept, *args]


def call(argv, capsys, out=None):
    """bench.main(argv) in this process (a subprocess costs ~2 s of imports): its exit code and stderr; what it
    printed on stdout is appended to ``out``."""
    try:
        code = load_script("bench").main(argv)
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    if out is not None:
        out.append(captured.out)
    return code, captured.err


def stub_run(monkeypatch, during=lambda: None):
    """The single-network benchmark replaced by a report made at once; ``during`` runs while it 'runs'."""
    def run(sizes, *args, **kwargs):
        during()
        return Report("cpu", {"cpu": "stub", "threads": 1, "python": "3", "torch": "2", "jax": None,
                              "fused_cpu_kernels": False}, [Result(64, "eager", 1.0, 1.0, samples_ms=[1.0])])

    monkeypatch.setattr(torch_tanhnet.benchmark, "run", run)


def one_error_line(err: str, text: str) -> None:
    lines = err.strip().splitlines()
    assert lines[-1].startswith("bench.py: error: ") and text in lines[-1], err
    assert "Traceback" not in err and not any(line.startswith("bench.py: error") for line in lines[:-1]), err


def test_an_existing_json_file_is_refused_before_benchmarking_and_kept(tmp_path, capsys):
    saved = tmp_path / "bench.json"
    saved.write_text("the user's own results\n")
    out = []
    code, err = call([*TINY, "--json", str(saved)], capsys, out)
    assert code == 2 and out == [""], err
    one_error_line(err, f"--json {saved} already exists; choose another path")
    assert "N = 64" not in err  # refused before the benchmark began
    assert saved.read_text() == "the user's own results\n"


@pytest.mark.parametrize("where,message", [
    (lambda d: d, "is a folder"),
    (lambda d: d / "missing" / "bench.json", "the folder {d}/missing does not exist"),
    (lambda d: d / "a-file" / "bench.json", "{d}/a-file is not a folder"),
    (lambda d: d / "new\nline" / "bench.json", "the folder '{d}/new\\nline' does not exist"),  # one line, quoted
])
def test_a_json_path_that_cannot_be_written_is_refused_before_benchmarking(tmp_path, capsys, where, message):
    (tmp_path / "a-file").write_text("")
    out = []
    code, err = call([*TINY, "--json", str(where(tmp_path))], capsys, out)
    assert code == 2 and out == [""], err
    one_error_line(err, message.format(d=tmp_path))
    assert "N = 64" not in err


def test_an_unwritable_json_folder_is_refused_before_benchmarking(tmp_path, monkeypatch, capsys):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    ran = []
    stub_run(monkeypatch, during=lambda: ran.append(1))
    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # what a read-only folder does (this user may be root)
    code, err = call([*TINY, "--json", str(tmp_path / "bench.json")], capsys)
    assert code == 2 and not ran
    one_error_line(err, f"cannot write --json {tmp_path / 'bench.json'} (Permission denied)")


def test_the_json_is_written_whole_and_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    stub_run(monkeypatch)
    out = tmp_path / "bench.json"
    code, err = call([*TINY, "--json", str(out)], capsys)
    assert code == 0, err
    assert json.loads(out.read_text())["results"][0]["case"] == "eager"
    assert sorted(os.listdir(tmp_path)) == ["bench.json"]


def test_a_json_file_that_appears_during_the_run_is_kept(tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    stub_run(monkeypatch, during=lambda: out.write_text("written meanwhile\n"))
    code, err = call([*TINY, "--json", str(out)], capsys)
    assert code == 1
    one_error_line(err, f"--json {out} appeared while the benchmark ran and is left as it was; the results are in ")
    assert out.read_text() == "written meanwhile\n"
    kept = Path(err.strip().rsplit("the results are in ", 1)[1])
    assert kept.parent == tmp_path and json.loads(kept.read_text())["device"] == "cpu"


def test_a_json_write_that_fails_at_the_end_is_one_line(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    stub_run(monkeypatch, during=folder.rmdir)  # the folder is removed while the benchmark runs
    code, err = call([*TINY, "--json", str(folder / "bench.json")], capsys)
    assert code == 1
    one_error_line(err, f"cannot write --json {folder / 'bench.json'} (No such file or directory); "
                        "the results are only in the table above")


@pytest.mark.parametrize("args,message", [
    (["--min-time", "inf"], "argument --min-time: must be a number of seconds > 0 and <= 3600, got inf"),
    (["--min-time", "nan"], "argument --min-time: must be a number of seconds > 0 and <= 3600, got nan"),
    (["--min-time", "-1"], "argument --min-time: must be a number of seconds > 0 and <= 3600, got -1.0"),
    (["--min-time", "1e300"], "argument --min-time: must be a number of seconds > 0 and <= 3600, got 1e+300"),
    (["--rounds", "0"], "argument --rounds: must be a positive integer, got 0"),
    (["--sizes", "64", "-5"], "argument --sizes: each must be a positive integer, got -5"),
    (["--ensemble", "--models", "3", "0"], "argument --models: each must be a positive integer, got 0"),
    (["--ensemble", "--single-n", "0"], "argument --single-n: must be a positive integer, got 0"),
    (["--sizes", "10", "64", "10"], "argument --sizes: 10 is given twice"),  # measured twice, two rows of one size
    (["--ensemble", "--models", "5", "5"], "argument --models: 5 is given twice"),
])
def test_each_bad_value_is_its_own_line_naming_the_flag(capsys, args, message):
    out = []
    code, err = call(tiny_with(args), capsys, out)  # --min-time inf used to calibrate forever
    assert code == 2 and out == [""], err
    one_error_line(err, message)
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", [["--models", "4"], ["--single-n", "64"], ["--no-loop"]])
def test_an_ensemble_flag_without_ensemble_is_refused_not_ignored(capsys, flag):
    """--single-n without --ensemble was ignored silently (--models and --no-loop were refused)."""
    code, err = call([*TINY, *flag], capsys)
    assert code == 2 and err.strip().endswith("error: --models, --single-n and --no-loop go with --ensemble"), err


@pytest.mark.parametrize("args,message", [
    (["--sizes", "1000000000000"], "argument --sizes: N = 1000000000000 would need at least 100 TB of memory, "
                                   "more than the "),
    (["--ensemble", "--models", "1000000000", "--sizes", "16", "--single-n", "64"],
     "argument --models: 1000000000 networks at N = 16 would need at least 8.96 TB of memory, more than the "),
    (["--ensemble", "--models", "2000000", "--sizes", "10000000", "--single-n", "64"],  # it blamed --sizes alone
     "arguments --models and --sizes: 2000000 networks at N = 10000000 would need at least "),
    (["--ensemble", "--models", "2", "--sizes", "16", "--single-n", "1000000000000"],
     "argument --single-n: N = 1000000000000 would need at least 100 TB of memory, more than the "),
])
def test_sizes_that_cannot_fit_in_memory_are_refused_before_allocating(args, message, capsys):
    code, err = call(tiny_with(args), capsys)  # --models 10**9 built networks for minutes, then a MemoryError
    assert code == 2, err
    one_error_line(err, message)
    assert "this machine has free" in err


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 8000000000000 bytes. Error code 12 (Cannot allocate memory)"),
])
def test_running_out_of_memory_anyway_is_one_line(error, monkeypatch, capsys):
    def run(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch_tanhnet.benchmark, "run", run)
    code, err = call(TINY, capsys)
    assert code == 1
    one_error_line(err, "bench.py: error: out of memory (")
    assert "try smaller --sizes" in err


def test_memory_shortfall_compares_the_estimate_with_what_is_free():
    import torch

    from torch_tanhnet.training.setup import memory_shortfall

    cpu = torch.device("cpu")
    assert memory_shortfall(10**9, cpu, available=2 * 10**9) is None
    assert memory_shortfall(3 * 10**9, cpu, available=2 * 10**9) == ("at least 3 GB of memory, more than the 2 GB "
                                                                      "this machine has free")


@pytest.mark.parametrize("name, message", [
    ("", "--json needs the name of a new file, got ''"),  # it ran, and wrote nothing, without a word
    ("-", "--json needs the name of a new file, got '-' (the table is stdout's; a file named - is ./-)"),  # wrote "-"
])
def test_an_empty_json_name_or_a_dash_is_refused_not_taken(tmp_path, monkeypatch, capsys, name, message):
    ran = []
    stub_run(monkeypatch, during=lambda: ran.append(True))
    monkeypatch.chdir(tmp_path)
    code, err = call([*TINY, "--json", name], capsys)
    assert code == 2 and not ran, err  # refused before the benchmark
    one_error_line(err, message)
    assert list(tmp_path.iterdir()) == []
