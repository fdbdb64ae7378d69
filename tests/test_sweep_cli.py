"""scripts/sweep.py as a user runs it: the smoke sweep, one-line errors, Ctrl-C, SIGKILL and --resume."""

import csv
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from conftest import load_script, run_as_main

from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.runner import sweep
from torch_tanhnet.training import checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sweep.py"
cli = load_script("sweep")


def main(*args, cwd, monkeypatch, capsys):
    """scripts/sweep.py's main in this process (a subprocess costs seconds of imports): (code, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def start(*args, cwd):
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_sweep_prints_plan_table_and_where_things_are(tmp_path, monkeypatch, capsys):
    code, out, err = main("--hidden", "2", "3", "--lr", "0.5", "1", "--seeds", "3", "--epochs", "50", "--n-samples",
                          "100", "--logdir", "out", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "sweep: 12 runs = 4 settings (grid over hidden, lr) × 3 seeds 0..2, in 2 groups:" in out
    assert "hidden 2, sgd, float32: 6 runs × 50 steps (80 training samples, full batch)" in out
    assert "estimated training time" in out
    table = out[out.index("hidden  lr"):].splitlines()
    assert table[0].split()[:4] == ["hidden", "lr", "runs", "solved"] and len(table) >= 5
    # train.py as this folder (a temporary one, outside the project) can name it: by its whole path
    assert f"any run alone, e.g. run 0: python {shlex.quote(str(SCRIPT.with_name('train.py')))} --n-samples 100 " \
           "--hidden 2 --epochs 50 --seed 0" in out
    assert "view it with: tensorboard --logdir out" in out
    assert len(rows(tmp_path / "out" / "results.csv")) == 12


def test_seeds_take_a_count_a_list_or_a_range(tmp_path, monkeypatch, capsys):
    for given, want in ((["4"], [0, 1, 2, 3]), (["7", "3"], [7, 3]), (["10:13"], [10, 11, 12])):
        logdir = f"s{given[0][:2]}"
        code, _, err = main("--seeds", *given, "--epochs", "2", "--n-samples", "20", "--logdir", logdir,
                            "--gallery", "0", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0, err
        assert [int(x["seed"]) for x in rows(tmp_path / logdir / "results.csv")] == want


def test_a_dry_run_without_logdir_leaves_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the dry run writes, then removes
    code, out, err = main("--dry-run", "--seeds", "2", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "2 runs trained" in out and [p.name for p in tmp_path.iterdir()] == ["tmp"]
    assert not list((tmp_path / "tmp").glob("sweep-*"))
    # it says it is one (it printed the sweep's 2000 steps and its estimate, as for a real sweep)
    assert "dry run: at most 5 steps of each group" in out and "estimated training time" not in out


@pytest.mark.parametrize("refused", [["--n-samples", "2"], ["--seeds", "100000", "--n-samples", "1000000"],
                                     ["--data", "missing.csv"]],
                         ids=["too-few-samples", "too-large", "no-data-file"])
def test_a_refused_dry_run_without_logdir_leaves_nothing(tmp_path, monkeypatch, capsys, refused):
    """Its temporary folder was made before the checks, and left behind, empty, by each refusal."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    code, out, err = main("--dry-run", *refused, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.startswith("sweep.py: error: ") and err.count("\n") == 1, err
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"] and list((tmp_path / "tmp").iterdir()) == []


def test_a_sweep_over_data_files_in_folders_finishes(tmp_path, monkeypatch, capsys):
    """It trained, then failed writing pictures/gallery-data=dd/b.csv.png, on every --resume too."""
    (tmp_path / "dd").mkdir()
    for name in ("a.csv", "dd/b.csv"):
        (tmp_path / name).write_text("x1,x2,label\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(10)))
    data = ["--data", "a.csv", "dd/b.csv", str(tmp_path / "dd" / "b.csv"), "--epochs", "2", "--seeds", "1"]
    code, _, err = main(*data, "--logdir", "run", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "argument --data: " in err and " is given twice (as 'dd/b.csv')" in err  # one file
    for extra in (["--logdir", "run"], ["--logdir", "dry", "--dry-run"]):
        code, out, err = main(*data[:3], *data[4:], *extra, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0, err
        assert len(rows(tmp_path / extra[1] / "results.csv")) == 2 and len(list((tmp_path / extra[1] / "pictures")
                                                                                 .glob("gallery-data=*.png"))) == 2


BAD = [
    (["--lr", "0.5", "-1"], "argument --lr: must be a positive number, got -1.0"),
    (["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["--hidden", "2", "0"], "argument --hidden: must be a positive integer, got 0"),
    (["--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    (["--seeds", "5:5"], "argument --seeds: A:B takes the seeds A to B-1, so B must exceed A, got '5:5'"),
    (["--seeds", "3:1"], "argument --seeds: A:B takes the seeds A to B-1, so B must exceed A, got '3:1'"),
    (["--lr", "0.1:1"], "argument --lr: a range (0.1:1) needs --random N"),
    (["--random", "3", "--lr", "1:0.1"], "argument --lr: a range needs LOW ≤ HIGH"),
    (["--random", "3", "--lr", "0.1:1:ln"], "argument --lr: a range is LOW:HIGH or LOW:HIGH:log"),
    (["--dataset", "blobs"], "argument --dataset: unknown dataset 'blobs'"),
    (["--data", "missing.csv"], "data file 'missing.csv' does not exist"),
    (["--n-samples", "100000000", "--hidden", "512", "--seeds", "5000"], "the sweep would need about"),
    (["--resume"], "argument --resume: needs --logdir"),
    (["--logdir", "nothing-here", "--resume"], "'nothing-here' does not exist: --resume continues a sweep in an "
                                                "existing folder"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    code, out, err = main(*args, "--epochs", "2", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2, (out, err)
    assert err.strip().splitlines() == [err.strip()] and err.startswith("sweep.py: error: ")
    assert message in err
    assert not (tmp_path / "sweeps").exists()


def test_bad_input_from_the_shell_is_one_line_on_stderr(tmp_path):
    r = run("--lr", "0.5", "-1", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "sweep.py: error: argument --lr: must be a positive number, "
                                                        "got -1.0\n")


LONG = ["--hidden", "2", "3", "--seeds", "3", "--n-samples", "60", "--epochs", "2500", "--dtype", "float64",
        "--checkpoint-interval", "100", "--checkpoint-seconds", "0", "--log-interval", "50", "--gallery", "1",
        "--no-progress"]


def uninterrupted(logdir):
    config = SweepConfig(values={"hidden": [2, 3], "n_samples": [60], "epochs": [2500], "dtype": ["float64"]},
                         seeds=[0, 1, 2], checkpoint_interval=100, checkpoint_seconds=0, log_interval=50, gallery=1,
                         logdir=str(logdir), progress=False)
    return sweep(config)


def wait_for(path, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """LONG's sweep run without a stop, once for the tests that stop one."""
    logdir = tmp_path_factory.mktemp("uninterrupted") / "whole"
    uninterrupted(logdir)
    return logdir


def assert_same_sweep(a, b):
    ra, rb = rows(a / "results.csv"), rows(b / "results.csv")
    assert ra == rb  # every metric, exactly
    pa, pb = checkpoint.load(a / "checkpoint.pt"), checkpoint.load(b / "checkpoint.pt")
    for g in pa["groups"]:
        for name in "UbWc":
            assert torch.equal(pa["groups"][g]["params"][name], pb["groups"][g]["params"][name])
        assert torch.equal(pa["groups"][g]["history"], pb["groups"][g]["history"])


def test_a_sweep_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys, whole):
    proc = start(*LONG, "--logdir", "killed", cwd=tmp_path)
    wait_for(tmp_path / "killed" / "checkpoint.pt", proc)
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate()
    state = checkpoint.load(tmp_path / "killed" / "checkpoint.pt")
    assert not state["complete"]
    code, _, err = main("--logdir", "killed", "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert_same_sweep(tmp_path / "killed", whole)


def test_ctrl_c_saves_exits_130_and_resume_finishes_it(tmp_path, monkeypatch, capsys, whole):
    proc = start(*LONG, "--logdir", "stopped", cwd=tmp_path)
    wait_for(tmp_path / "stopped" / "checkpoint.pt", proc)
    code, out, err = main("--logdir", "stopped", "--resume", "--epochs", "1", cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)  # --epochs 1: were it accepted again, it would end at once
    assert (code, out) == (2, "") and err == ("sweep.py: error: argument --logdir: 'stopped' is being written by "
                                              "a run or sweep that is still running; wait for it to end (or stop it: "
                                              "Ctrl-C saves its checkpoint), then start this one again\n")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"continue with: python {shlex.quote(str(SCRIPT))} --logdir stopped --resume" in out
    state = checkpoint.load(tmp_path / "stopped" / "checkpoint.pt")
    assert state["current"] is not None or len(state["groups"]) == 1  # stopped inside the sweep, state saved
    code, out, err = main("--logdir", "stopped", "--resume", "--lr", "0.5", cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)  # lr 0.5 is the saved (default) value: allowed
    assert code == 0, err
    assert "trained in" in out and "(this start and the earlier ones)" in out  # the time is the checkpoint's sum
    assert_same_sweep(tmp_path / "stopped", whole)
    code, out, err = main("--logdir", "stopped", "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "is complete; its results:" in out
    assert "results: stopped/results.csv, pictures: stopped/pictures\n" in out
    written = (tmp_path / "stopped" / "results.csv").read_bytes()
    plan = (tmp_path / "stopped" / "sweep.json").read_bytes()
    (tmp_path / "stopped" / "results.csv").unlink()  # removed by hand: the line named a file that was not there
    (tmp_path / "stopped" / "sweep.json").unlink()  # and the plan: it was left out
    shutil.rmtree(tmp_path / "stopped" / "pictures")
    code, out, err = main("--logdir", "stopped", "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and ("results: stopped/results.csv (written again: it was not there), pictures: stopped/pictures "
                          "(not there: removed since the sweep wrote them)\n") in out
    assert "sweep.json: stopped/sweep.json (written again: it was not there)\n" in out
    assert (tmp_path / "stopped" / "results.csv").read_bytes() == written
    assert (tmp_path / "stopped" / "sweep.json").read_bytes() == plan
    code, out, err = main("--logdir", "stopped", "--resume", "--hidden", "4", cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)
    assert code == 2 and "argument --hidden: [4] differs from the checkpoint's [2, 3]" in err
    code, out, err = main("--logdir", "stopped", "--epochs", "2", cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)
    assert code == 2 and "already holds a sweep" in err



def test_sweep_json_removed_while_the_sweep_runs_is_written_again_at_its_end(tmp_path, monkeypatch, capsys):
    """sweep.json is written when a sweep starts: removed while it ran, the sweep finished without it, and --resume
    did not write it again (it did results.csv). The end of the sweep writes it again, the same bytes."""
    import json

    from torch_tanhnet.sweep import group, metrics

    args = ("--hidden", "2", "3", "--seeds", "2", "--epochs", "2", "--n-samples", "40", "--gallery", "0")
    code, out, err = main(*args, "--logdir", "whole", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err

    def curvature(model, X, y):  # at the end of each group: the file removed by hand meanwhile
        (tmp_path / "gone" / "sweep.json").unlink(missing_ok=True)
        return metrics.curvature(model, X, y)

    monkeypatch.setattr(group, "curvature", curvature)
    code, out, err = main(*args, "--logdir", "gone", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    written, whole = (json.loads((tmp_path / name / "sweep.json").read_text()) for name in ("gone", "whole"))
    assert written["sweep"].pop("logdir") == "gone" and whole["sweep"].pop("logdir") == "whole"
    assert written == whole


def test_a_dry_runs_folder_is_not_resumed_as_a_real_sweep_nor_a_real_one_as_a_dry_run(tmp_path, monkeypatch, capsys):
    """A dry run kept in --logdir printed a train.py command for its runs (they trained 5 steps, not --epochs), and
    on --resume called itself complete without saying what it was; --resume --dry-run on a real sweep met its
    checkpoint as a hand-edited one. A resumed complete sweep trained nothing now: no sum of starts."""
    code, out, err = main("--dry-run", "--seeds", "2", "--epochs", "50", "--logdir", "dry", cwd=tmp_path,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "any run alone" not in out, err
    code, out, err = main("--logdir", "dry", "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "complete; its results (a dry run's: at most 5 steps of each group)" in out, err
    assert "any run alone" not in out and "(this start and the earlier ones)" not in out
    code, out, err = main("--seeds", "1", "--epochs", "3", "--n-samples", "20", "--logdir", "real", cwd=tmp_path,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    code, out, err = main("--logdir", "real", "--resume", "--dry-run", cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)
    assert code == 2 and err.strip() == ("sweep.py: error: argument --dry-run: True differs from the checkpoint's "
                                         "False; a resumed sweep keeps its settings"), err



def test_resume_with_a_setting_that_only_a_new_sweep_could_check_names_the_checkpoint(tmp_path, monkeypatch, capsys):
    """`--resume --random 2` on a grid sweep of one setting said "2 draws, but the values make 1 different setting"
    (the values it meant were the defaults of a new sweep), not that the saved sweep drew nothing."""
    code, out, err = main("--seeds", "1", "--epochs", "3", "--n-samples", "20", "--gallery", "0", "--logdir", "grid",
                          cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    code, out, err = main("--logdir", "grid", "--resume", "--random", "2", cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)
    assert code == 2 and err.strip() == ("sweep.py: error: argument --random: 2 differs from the checkpoint's "
                                         "None; a resumed sweep keeps its settings"), err


def test_resume_compares_batch_sizes_by_what_they_mean(tmp_path, monkeypatch, capsys):
    """--resume --batch-size 400 on a sweep saved at full batch over 400 training samples was refused ([400] vs
    [None]); train.py's --resume compares by meaning (re-probe). 100 still differs; so does a list of another length."""
    code, out, err = main("--seeds", "1", "--epochs", "3", "--n-samples", "50", "--gallery", "0", "--logdir", "bs",
                          cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "40 training samples, full batch" in out, out + err
    for same in (["40"], ["64"], ["full"]):
        code, out, err = main("--logdir", "bs", "--resume", "--batch-size", *same, cwd=tmp_path,
                              monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0, err
    for other, why in ((["10"], "[10] differs from the checkpoint's [None] (of 40 training samples)"),
                       (["40", "10"], "[40, 10] differs from the checkpoint's [None]; ")):
        code, out, err = main("--logdir", "bs", "--resume", "--batch-size", *other, cwd=tmp_path,
                              monkeypatch=monkeypatch, capsys=capsys)
        assert code == 2 and f"argument --batch-size: {why}" in err, err

class HeadOne(io.TextIOBase):
    """A stdout read by ``head -1``: its first line goes through; every write after it meets the pipe head closed."""

    def __init__(self):
        self.text = ""
        self._fd = os.open(os.devnull, os.O_WRONLY)  # what console.Output points at os.devnull once it is cut off

    def write(self, text):
        if "\n" in self.text:  # head has its line (the write that held it went whole into the pipe) and has gone
            raise BrokenPipeError(32, "Broken pipe")
        self.text += text
        return len(text)

    def fileno(self):
        return self._fd

    def close(self):
        os.close(self._fd)
        super().close()


def test_a_reader_that_closes_stdout_early_gets_no_error_message(tmp_path, monkeypatch):
    """`sweep.py ... | head -1`: the rest of the output met a closed pipe, which the sweep blamed on the disk
    ("cannot write (Broken pipe); what was checkpointed before is kept: continue with --resume"). Through sweep.py's
    __main__ in this process (a pipe whose reader goes before anything is written: a real process in
    tests/test_console.py)."""
    monkeypatch.chdir(tmp_path)
    out, err = HeadOne(), io.StringIO()
    code = run_as_main("sweep", ["--seeds", "2", "--epochs", "3", "--n-samples", "20", "--gallery", "0", "--logdir",
                                 "out"], stdout=out, stderr=err)
    out.close()
    assert code == 141 and err.getvalue() == "", err.getvalue()
    assert out.text.startswith("sweep: 2 runs = 1 setting"), out.text  # the plan, written whole, then the pipe shut
    assert rows(tmp_path / "out" / "results.csv")  # the sweep itself finished


def test_a_finished_sweep_resumed_with_another_solved_at_says_what_its_files_hold(tmp_path, monkeypatch, capsys):
    """The table counted at the new --solved-at while results.csv, the pictures and TensorBoard kept the sweep's own:
    100% solved above 2 of 6 in results.csv, and nothing said so."""
    code, out, err = main("--seeds", "3", "--epochs", "30", "--gallery", "0", "--logdir", "done", cwd=tmp_path,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    files = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()}
    code, out, err = main("--logdir", "done", "--resume", "--solved-at", "0.5", "--gallery", "2", cwd=tmp_path,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and err == ""
    assert "solved: final test accuracy ≥ 0.5;" in out
    assert ("(results.csv, the pictures and TensorBoard, written when the sweep finished, count a run solved at "
            "≥ 0.95; the table above counts at ≥ 0.5)\n") in out
    assert ("(--gallery applies when a sweep finishes; this one had: its pictures and HParams are as they were "
            "written)\n") in out
    assert {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()} == files
    code, out, err = main("--logdir", "done", "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "written when the sweep finished" not in out and "applies when" not in out


@pytest.mark.parametrize("args,hint", [
    (["--seeds", "5"], None),
    (["--seeds", "41"], "TensorBoard holds 43 runs, more than its Scalars, Custom Scalars and Images tabs select (40): "
                        "open them with the settings' runs alone selected, "
                        "http://localhost:6006/#custom_scalars&regexInput=%5E%28%3F%21seeds%2F%29, "
                        "http://localhost:6006/#images&regexInput=%5E%28%3F%21seeds%2F%29 and "
                        "http://localhost:6006/#scalars&regexInput=%5E%28%3F%21seeds%2F%29 (6006: TensorBoard's own "
                        "port)"),
    (["--seeds", "1", "--sessions", "settings", "--lr", *[str(0.01 * (i + 1)) for i in range(40)]],
     "TensorBoard holds 41 runs, more than its Scalars, Custom Scalars and Images tabs select (40): press 'toggle "
     "all runs' there"),
    (["--seeds", "2", "--lr", *[str(0.01 * (i + 1)) for i in range(40)]],  # the settings alone are past 40 too
     "TensorBoard holds 121 runs, more than its Scalars, Custom Scalars and Images tabs select (40): write "
     "^(?!seeds/) in their runs filter, then press 'toggle all runs' there"),
])
def test_a_sweep_past_tensorboards_run_list_says_how_to_see_its_curves(tmp_path, monkeypatch, capsys, args, hint):
    """Past 40 runs, Custom Scalars and Images open empty (a student saw five charts of 'Matches (0)'): the sweep's
    last line says how to select them, as TensorBoard 2.21 does it (checked in Chromium: with the sessions filtered
    out, TensorBoard selects the runs left, and 'toggle all runs' would unselect them; the link opens the tab
    filtered)."""
    code, out, _ = main(*args, "--epochs", "2", "--gallery", "0", "--logdir", "sw", cwd=tmp_path,
                        monkeypatch=monkeypatch, capsys=capsys)
    last = out.rstrip("\n").splitlines()[-1]
    assert code == 0 and (last == hint if hint else last.startswith("view it with: tensorboard --logdir sw"))


def test_a_stop_while_the_results_are_written_is_said_and_a_finished_sweep_says_when_it_trained(tmp_path, monkeypatch,
                                                                                                  capsys):
    """A Ctrl-C while a sweep wrote its results and pictures was absorbed without a word (exit 0 a second later);
    resuming a finished sweep said '2 runs trained in 0.0 s' as if now (hostile campaign)."""
    from torch_tanhnet.sweep import board
    from torch_tanhnet.training import signals

    write_board = board.write_board

    def stopped_while_writing(*args, **kw):
        signals.late.set()  # what training.signals.interrupt does with a signal after the loop
        return write_board(*args, **kw)

    monkeypatch.setattr(board, "write_board", stopped_while_writing)
    code, out, err = main("--seeds", "2", "--epochs", "2", "--n-samples", "20", "--logdir", "s", "--gallery", "0",
                          cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "a stop came while the results were being written; they were finished first"
    assert (tmp_path / "s" / "results.csv").exists()
    monkeypatch.setattr(board, "write_board", write_board)
    code, out, err = main("--logdir", "s", "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and " runs trained in " in out and "s (when it ran)\n" in out, err
    assert "a stop came" not in out


@pytest.mark.parametrize("failing_group, kept", [(0, "; nothing was kept"),
                                                 (1, "; what was checkpointed before is kept: continue it with ")])
def test_out_of_memory_is_one_line_and_keeps_what_was_checkpointed(tmp_path, monkeypatch, capsys, failing_group,
                                                                    kept):
    """An allocation that fails past the estimate (the curvature at a group's end once took 7x it) was a 15-frame
    traceback: one line naming the flags that size a sweep, exit 1, and --resume continues where it was saved."""
    from torch_tanhnet.sweep import group, metrics

    groups = []

    def curvature(model, X, y):
        groups.append(model)
        if len(groups) - 1 == failing_group:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 7679999999 bytes. Error code 12 (Cannot allocate memory)")
        return metrics.curvature(model, X, y)

    args = ("--hidden", "2", "3", "--seeds", "2", "--epochs", "2", "--n-samples", "40", "--gallery", "0",
            "--logdir", "oom")
    with monkeypatch.context() as m:
        m.setattr(group, "curvature", curvature)
        code, out, err = main(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("sweep.py: error: out of memory (data. DefaultCPUAllocator: can't allocate memory: you "
                          "tried to allocate 7679999999 bytes"), err
    assert "use fewer --seeds or settings at once, or a smaller --n-samples or --hidden; " in err and kept in err, err
    if failing_group:
        code, out, err = main(*args, "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0, err
        assert len(rows(tmp_path / "oom" / "results.csv")) == 4


def test_memory_short_under_ulimit_v_even_for_reading_the_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """`sweep.py --dry-run` under `ulimit -v 700000`: torch._dynamo's import (at the first optimizer) failed with
    MemoryError, and the error's own handler, looking for the sweep's checkpoints, failed with ENOMEM: an 85-line
    traceback. Any error at the limit is out of memory, named as such; a folder that cannot be read is said so."""
    import errno

    from torch_tanhnet.sweep import group, state
    from torch_tanhnet.training import setup

    limit = 700_000 * 1024
    monkeypatch.setattr(setup, "address_space_limit", lambda: limit)
    monkeypatch.setattr(setup, "mapped_peak", lambda: limit - 2**20)
    monkeypatch.setattr(setup, "address_space_headroom", lambda: 2**30)

    trained, holds_sweep = [], state.holds_sweep

    def curvature(model, X, y):  # at the end of the first group
        trained.append(model)
        raise SystemError("error return without exception set")

    def unreadable(folder):  # once training began; from the start for t
        if trained or folder.name == "t":
            raise OSError(errno.ENOMEM, "Cannot allocate memory", str(folder))
        return holds_sweep(folder)

    monkeypatch.setattr(group, "curvature", curvature)
    monkeypatch.setattr(state, "holds_sweep", unreadable)
    code, out, err = main("--seeds", "2", "--epochs", "2", "--n-samples", "40", "--gallery", "0", "--logdir", "s",
                          cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err == (
        "sweep.py: error: out of memory (error return without exception set) within this process's address-space "
        "limit of 717 MB (ulimit -v 700000); raise the limit, or use fewer --seeds or settings at once, or a smaller "
        "--n-samples or --hidden; whatever it had checkpointed is kept (its folder could not be read to say "
        "more)\n"), err
    code, out, err = main("--seeds", "2", "--epochs", "2", "--n-samples", "40", "--gallery", "0", "--logdir", "t",
                          cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)  # before it trained: the same
    assert code == 1 and err == ("sweep.py: error: cannot write t (Cannot allocate memory); whatever it had "
                                 "checkpointed is kept (its folder could not be read to say more)\n"), err


def test_a_data_file_far_from_the_networks_scale_is_warned_of_as_train_py_does(tmp_path, monkeypatch, capsys,
                                                                                recwarn):
    """train.py warns of features far from tanh's scale and names --standardize; sweep.py trained them in silence
    and reported 0% solved. Each file is named; a sweep whose runs all standardize is not warned."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 2, generator=g, dtype=torch.float64)
    for name, scale, labels in (("huge.csv", 1e30, (X[:, 0] > 0).long()), ("flat.csv", 1e30, torch.zeros(40))):
        (tmp_path / name).write_text("".join(f"{a * scale!r},{b * scale!r},{int(c)}\n"
                                             for (a, b), c in zip(X.tolist(), labels.tolist())))
    common = ("--seeds", "1", "--epochs", "1", "--gallery", "0", "--dry-run", "--no-progress")
    code, out, err = main("--data", "huge.csv", "flat.csv", *common, cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)
    lines = [str(w.message.for_command_line()) for w in recwarn if hasattr(w.message, "for_command_line")]
    assert code == 0 and len(lines) == 3, (err, lines)  # both files far out, and flat.csv's one label
    assert lines[0].startswith("the features in 'huge.csv' lie far from the network's scale (x1 in [") and lines[
        0].endswith("--standardize trains on (x - mean)/std"), lines
    assert "the features in 'flat.csv' lie far" in lines[1] and "every label in 'flat.csv' is 0" in lines[2], lines
    recwarn.clear()
    code, out, err = main("--data", "huge.csv", "--standardize", "on", *common, cwd=tmp_path, monkeypatch=monkeypatch,
                          capsys=capsys)
    assert code == 0 and not [w for w in recwarn if hasattr(w.message, "for_command_line")], err


def test_a_data_error_of_one_setting_among_several_names_that_setting(tmp_path, monkeypatch, capsys):
    """A feature's or a split's error named no file of several --data files, nor which --n-samples."""
    rows = [(i / 20 - 1, (i * 7 % 20) / 10 - 1, i % 2) for i in range(40)]
    (tmp_path / "good.csv").write_text("".join(f"{a},{b},{c}\n" for a, b, c in rows))
    (tmp_path / "tiny.csv").write_text("".join(f"{a * 1e-50},{b},{c}\n" for a, b, c in rows))
    code, out, err = main("--data", "good.csv", "tiny.csv", "--seeds", "2", "--epochs", "3", "--dry-run",
                          "--no-progress", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.startswith("sweep.py: error: with --data tiny.csv: feature x1 has values no larger "
                                        "than "), err
    code, out, err = main("--n-samples", "2", "100", "--seeds", "2", "--epochs", "3", "--dry-run", "--no-progress",
                          cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.startswith("sweep.py: error: with --n-samples 2: too few samples for the split"), err
