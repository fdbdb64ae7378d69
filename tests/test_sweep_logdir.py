"""Where a sweep writes: nothing a user had is ever deleted or overwritten, and an unusable folder is one line."""

import dataclasses
import errno
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from test_sweep_cli import main, rows

from torch_tanhnet.sweep import runner
from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.training.checkpoint import CheckpointError

QUICK = ["--seeds", "2", "--epochs", "2", "--n-samples", "20", "--gallery", "0", "--no-progress"]


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("held", [["results.csv"], ["sweep.json", "pictures/solved.png"], ["thesis.tex"],
                                  ["notes/a.txt"], [".hidden"]])
def test_a_folder_that_holds_anything_is_refused_and_left_as_it_was(tmp_path, monkeypatch, capsys, held):
    mine = tmp_path / "mine"
    for name in held:
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        (mine / name).write_text(f"the user's {name}")
    before = files(mine)
    code, out, err = main(*QUICK, "--logdir", "mine", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.count("\n") == 1, err
    shown = ", ".join(sorted({name.split("/")[0] for name in held}))
    assert f"argument --logdir: 'mine' is not empty ({shown})" in err
    assert "choose another --logdir" in err
    assert files(mine) == before


def test_a_new_or_empty_folder_is_used(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    for logdir in ("empty", "new/deeper"):
        code, _, err = main(*QUICK, "--logdir", logdir, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0, err
        assert len(rows(tmp_path / logdir / "results.csv")) == 2


def test_a_dry_run_deletes_only_the_folder_it_made(tmp_path, monkeypatch, capsys):
    """A user's folder named like a dry run's temporary one, in the temporary directory, is theirs: kept."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    theirs = tmp / f"{runner.DRY}mine"
    theirs.mkdir()
    code, _, err = main("--dry-run", *QUICK, "--logdir", str(theirs), cwd=tmp_path, monkeypatch=monkeypatch,
                        capsys=capsys)
    assert code == 0, err
    assert (theirs / "results.csv").exists()  # the dry run wrote where it was told, and left it there
    code, _, err = main("--dry-run", *QUICK, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    # its own temporary folder is gone, the user's kept (torch may make its own cache folders there on first use)
    assert [p.name for p in tmp.iterdir() if p.name.startswith(runner.DRY)] == [theirs.name]


def test_an_interrupted_dry_run_keeps_nothing_and_says_so(tmp_path, monkeypatch, capsys):
    """Its temporary folder is removed however the dry run ends: a Ctrl-C must not point at a checkpoint there."""
    import signal

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    step = runner.GroupTrainer.train_step

    def interrupted(self):
        os.kill(os.getpid(), signal.SIGINT)
        return step(self)

    monkeypatch.setattr(runner.GroupTrainer, "train_step", interrupted)
    code, out, err = main("--dry-run", *QUICK, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 130 and out.strip().endswith("interrupted; a dry run keeps nothing without --logdir"), out + err
    assert [p.name for p in tmp.iterdir() if p.name.startswith(runner.DRY)] == []


def test_a_dry_run_that_fails_while_it_trains_leaves_no_folder(tmp_path, monkeypatch):
    """A dry run that ended in an error after its plan (a bug, an optimizer's refusal) left its temporary folder,
    with whatever it had written, in the temporary directory."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(runner.GroupTrainer, "result", lambda self: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        runner.sweep(SweepConfig(values={"epochs": [3], "n_samples": [20]}, seeds=[0], dry_run=True, progress=False))
    assert [p.name for p in tmp.iterdir() if p.name.startswith(runner.DRY)] == []


def test_the_default_folder_leads_with_the_time_and_is_not_train_pys_runs(tmp_path, monkeypatch, capsys):
    """TensorBoard's HParams tab reads one experiment per log dir: a sweep in runs/ beside train.py runs (under
    `tensorboard --logdir runs`, as both printed) blanked one or the other's metrics."""
    code, out, err = main(*QUICK, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    (folder,) = (tmp_path / "sweeps").iterdir()
    assert re.fullmatch(r"\d{4}-\d{6}-moons", folder.name) and not (tmp_path / "runs").exists()
    assert f"view it with: tensorboard --logdir {Path('sweeps') / folder.name}" in out


def test_two_sweeps_started_in_one_second_get_two_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "default_logdir", lambda config: tmp_path / "sweeps" / "1130-120000-moons")
    for lr in ("0.5", "1.0"):
        code, _, err = main(*QUICK, "--lr", lr, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0, err
    first = tmp_path / "sweeps" / "1130-120000-moons"
    second = first.with_name(first.name + "-2")
    assert {r["lr"] for r in rows(first / "results.csv")} == {"0.5"}
    assert {r["lr"] for r in rows(second / "results.csv")} == {"1.0"}


def test_the_default_folder_is_made_only_for_a_sweep_that_will_run(tmp_path, monkeypatch, capsys):
    code, _, err = main("--n-samples", "100000000", "--hidden", "512", "--seeds", "5000", cwd=tmp_path,
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "the sweep would need about" in err
    assert not (tmp_path / "sweeps").exists()


def unusable(tmp_path):
    (tmp_path / "a-file").write_text("x")
    cases = [("a-file", "is a file, not a folder"),
             ("a-file/below", "cannot create 'a-file/below' ('a-file' is a file)"),
             ("x" * 300, "cannot create or write")]
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        cases.append(("locked/out", "cannot create or write"))
    return cases


def test_an_unusable_folder_is_one_line_before_anything_runs(tmp_path, monkeypatch, capsys):
    for logdir, message in unusable(tmp_path):
        code, out, err = main(*QUICK, "--logdir", logdir, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 2 and err.count("\n") == 1 and message in err, (logdir, err)
        assert "sweep:" not in out  # refused before the plan is printed
    assert (tmp_path / "a-file").read_text() == "x"


def test_a_full_disk_is_one_line_and_says_what_was_kept(tmp_path, monkeypatch, capsys):
    def full(state, logdir):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(logdir / "checkpoint.pt"))

    monkeypatch.setattr(runner.checkpoints, "save", full)
    code, _, err = main(*QUICK, "--logdir", "out", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert "cannot write out/checkpoint.pt (No space left on device)" in err and "nothing was kept" in err


@pytest.mark.parametrize("target", ["checkpoint.pt", "results.csv"])
def test_a_write_failing_in_the_file_itself_names_the_file(tmp_path, monkeypatch, capsys, target):
    # the OSError of a write or an fsync names no file: sweep.py said "cannot write (No space left on device)"
    from torch_tanhnet import files

    real = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(f".{target}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    code, _, err = main(*QUICK, "--logdir", "out", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert f"cannot write out/{target} (No space left on device)" in err, err


def test_a_write_that_names_no_file_names_the_sweeps_folder(tmp_path, monkeypatch, capsys):
    """TensorBoard's event writer fails naming no file: "cannot write (No space left on device)" said nothing of
    where (a hostile-input campaign, a sweep on a full tmpfs)."""
    from torch_tanhnet.sweep import board

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(board, "write_events", full)
    code, _, err = main(*QUICK, "--logdir", "out", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert "cannot write in out (No space left on device)" in err, err


@pytest.mark.parametrize("code, then", [("ENOSPC", "once there is room"), ("EDQUOT", "once there is room"),
                                        ("ENOENT", "once it can be written"), ("EACCES", "once it can be written"),
                                        ("ENAMETOOLONG", "once it can be written")])
def test_only_a_full_disk_is_blamed_on_room(tmp_path, monkeypatch, capsys, code, then):
    """A folder missing or a name too long is not a full disk: 'once there is room' would send the user to free
    space, and --resume would fail the same way."""
    def failing(state, logdir):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(logdir / "checkpoint.pt"))

    monkeypatch.setattr(runner.checkpoints, "save", failing)
    code_, _, err = main(*QUICK, "--logdir", "out", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code_ == 1 and err.count("\n") == 1, err
    assert f"cannot write out/checkpoint.pt ({os.strerror(getattr(errno, code))})" in err
    # the first checkpoint failed, and the sweep removed what it had made: it said "what was checkpointed before is
    # kept: continue with --resume", which then found nothing
    assert err.rstrip().endswith(f"so nothing was kept: start it again {then}"), err
    assert not (tmp_path / "out").exists()
    monkeypatch.undo()
    real, calls = runner.checkpoints.save, []

    def second_fails(state, logdir):  # a checkpoint on disk, then the failure: that one is kept
        calls.append(1)
        if len(calls) > 1:
            failing(state, logdir)
        real(state, logdir)

    monkeypatch.setattr(runner.checkpoints, "save", second_fails)
    code_, _, err = main(*QUICK, "--checkpoint-seconds", "0", "--logdir", "kept", cwd=tmp_path,
                         monkeypatch=monkeypatch, capsys=capsys)
    assert code_ == 1 and err.rstrip().endswith(f"continue with --resume {then}"), err


def test_ctrl_c_while_writing_the_results_keeps_the_sweep_and_resume_writes_them(tmp_path, monkeypatch, capsys):
    real = runner.write_csv

    def interrupted(rows_, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "write_csv", interrupted)
    code, _, err = main(*QUICK, "--checkpoint-seconds", "0", "--logdir", "out", cwd=tmp_path,
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == 130 and err.count("\n") == 1 and "continue it with python " in err and "--resume" in err, err
    monkeypatch.setattr(runner, "write_csv", real)
    code, _, err = main("--logdir", "out", "--resume", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert len(rows(tmp_path / "out" / "results.csv")) == 2


@pytest.mark.parametrize("seeds, message", [(["1000000000"], "at most 10,000,000 seeds, got 1,000,000,000"),
                                            (["0:100000000000"], "at most 10,000,000 seeds, got 100,000,000,000"),
                                            (["-3"], "must be at least 1, got -3"),
                                            (["9:4"], "A:B takes the seeds A to B-1, so B must exceed A, got '9:4'")])
def test_seed_counts_are_checked_before_any_list_is_built(tmp_path, monkeypatch, capsys, seeds, message):
    code, _, err = main("--seeds", *seeds, "--epochs", "2", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and f"argument --seeds: {message}" in err, err


def test_the_library_refuses_a_folder_that_holds_files_too(tmp_path):
    (tmp_path / "results.csv").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        runner.sweep(SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=[0], logdir=str(tmp_path),
                                 progress=False, gallery=0))
    assert (tmp_path / "results.csv").read_text() == "mine"


def test_a_signal_during_the_imports_stops_the_sweep_before_anything(tmp_path, monkeypatch, capsys):
    """sweep.py remembers a Ctrl-C that came while it imported torch (Python drops some of those KeyboardInterrupts:
    the whole sweep then ran); main stops on it once the imports are done, before making any folder."""
    import signal

    from test_sweep_cli import cli

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    monkeypatch.setattr(cli, "STARTUP_SIGNALS", [signal.SIGINT])
    monkeypatch.chdir(tmp_path)
    try:
        with pytest.raises(KeyboardInterrupt):
            cli.main([*QUICK, "--logdir", "out"], own_process=True)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert not (tmp_path / "out").exists()


def test_ctrl_c_before_the_sweep_began_says_nothing_was_trained(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "make_plan", interrupted)
    code, _, err = main(*QUICK, "--logdir", "out", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 130 and err == "sweep.py: interrupted before the sweep began; nothing was trained\n"


def test_of_two_sweeps_into_one_new_folder_at_once_one_goes_on_and_the_other_writes_nothing(tmp_path, monkeypatch,
                                                                                              capsys):
    """Both passed the check that the folder was empty (the race two processes run): the second stops in one line
    before training, and the first sweep's file is left as it was."""
    (tmp_path / "same").mkdir()
    (tmp_path / "same" / "sweep.json").write_text("the other sweep's")
    monkeypatch.setattr(runner, "check_new_logdir", lambda logdir: None)  # as if checked before the other wrote
    code, _, err = main(*QUICK, "--logdir", "same", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "argument --logdir: 'same' was just taken by another sweep started at the same moment" in err
    assert [p.name for p in (tmp_path / "same").iterdir()] == ["sweep.json"]
    assert (tmp_path / "same" / "sweep.json").read_text() == "the other sweep's"


@pytest.mark.parametrize("seeds", [range(3), (0, 1, 2), range(0, 3)])
def test_seeds_as_any_sequence_of_integers_are_taken_as_a_list(tmp_path, seeds):
    result = runner.sweep(SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=seeds,
                                      logdir=str(tmp_path / "out"), progress=False, gallery=0))
    assert [row["seed"] for row in result.results.rows] == [0, 1, 2]
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["sweep"]["seeds"] == [0, 1, 2]


def fail_json(plan, path, extra=None):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fail_step(self):
    raise RuntimeError("a fault in the first group")


@pytest.mark.parametrize("where", ["sweep.json", "training"])
@pytest.mark.parametrize("logdir", ["empty", "new/deeper", None])
def test_a_sweep_that_fails_before_its_first_checkpoint_leaves_nothing_to_block_the_next(tmp_path, monkeypatch,
                                                                                          where, logdir):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    config = SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=[0], logdir=logdir, progress=False,
                         gallery=0)
    with monkeypatch.context() as m:
        if where == "sweep.json":
            m.setattr(runner, "write_json", fail_json)
        else:
            m.setattr(runner.GroupTrainer, "train_step", fail_step)
        with pytest.raises((OSError, RuntimeError)):
            runner.sweep(config)
    after = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert [p for p in after if p != "sweeps"] == before  # (the default folder's parent, sweeps/, may stay)
    assert config.logdir == logdir  # the caller's config as it was
    assert runner.sweep(config).results.rows  # the next start is not refused


def test_a_run_and_a_sweep_each_refuse_the_others_folder_without_advising_a_resume_that_fails(tmp_path):
    """sweep.py on a train.py run's folder said it held a sweep and advised --resume, which then failed (not a sweep's
    checkpoint); train.py on a sweep's folder advised its own --resume, which failed as well."""
    from torch_tanhnet.training import setup, train
    from torch_tanhnet.training.config import ConfigError, TrainConfig

    train(TrainConfig(epochs=2, n_samples=40, logdir=str(tmp_path / "run"), progress=False))
    runner.sweep(SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=[0], logdir=str(tmp_path / "sw"),
                             progress=False, gallery=0))
    with pytest.raises(ConfigError, match="holds a train.py run") as e:
        runner.check_new_logdir(tmp_path / "run")
    assert "--resume" not in str(e.value)
    with pytest.raises(ConfigError, match=r"holds a sweep; a new run needs") as e:
        setup.check_new_logdir(tmp_path / "sw")
    assert "scripts/sweep.py --logdir" in e.value.for_command_line()



def test_a_sweep_folders_advice_fits_what_it_holds(tmp_path, monkeypatch):
    """train.py's advice on a sweep's folder: torchrun for one checkpointed per process (it advised one process,
    which state.load then refused), nothing to continue for one stopped before its first checkpoint (it advised a
    --resume that found nothing), the script as the working folder reaches it; sweep.py on a sweep whose
    sweep.json is gone called its checkpoint a train.py run's."""
    from torch_tanhnet.training import checkpoint, setup
    from torch_tanhnet.training.config import ConfigError

    monkeypatch.chdir(tmp_path)
    ranks, only_json = tmp_path / "ranks", tmp_path / "json"
    ranks.mkdir()
    only_json.mkdir()
    for r in range(2):
        (ranks / f"checkpoint.rank{r}-of-2.pt").write_bytes(b"")
    (only_json / "sweep.json").write_text("{}")
    with pytest.raises(ConfigError, match="--nproc_per_node=2 .*sweep.py --logdir .*ranks --resume"):
        setup.check_new_logdir(ranks)
    with pytest.raises(CheckpointError, match="holds a sweep's; continue it with torchrun --standalone"):
        checkpoint.load(ranks / "checkpoint.pt")  # train.py --resume there: it said only "no checkpoint at"
    with pytest.raises(ConfigError, match="it saved no checkpoint, so there is nothing of it to continue"):
        setup.check_new_logdir(only_json)
    with pytest.raises(CheckpointError, match="saved no checkpoint, so there is nothing of it to continue"):
        checkpoint.load(only_json / "checkpoint.pt")  # train.py --resume there
    runner.sweep(SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=[0], logdir=str(tmp_path / "sw"),
                             progress=False, gallery=0))
    (tmp_path / "sw" / "sweep.json").unlink()
    with pytest.raises(ConfigError, match="already holds a sweep: continue it with python "):
        runner.check_new_logdir(tmp_path / "sw")
    with pytest.raises(ConfigError, match="holds a sweep; a new run needs"):  # it said: a run's, continue it
        setup.check_new_logdir(tmp_path / "sw")
    (ranks / "checkpoint.rank0-of-2.pt").unlink()  # a torchrun sweep stopped before rank 0 saved its share
    for check in (setup.check_new_logdir, runner.check_new_logdir):
        with pytest.raises(ConfigError, match="it cannot be continued: process 0 of its 2 saved no checkpoint"):
            check(ranks)  # it advised a --resume that state.load then refused


def test_a_sweep_renamed_and_then_stopped_by_another_error_leaves_the_folder_at_its_name_alone(tmp_path, monkeypatch):
    # discard() was skipped only for FolderMoved itself: renamed, then out of memory before the first checkpoint, the
    # sweep removed the sweep.json of another sweep started at its old name
    monkeypatch.chdir(tmp_path)

    def on_group(group):
        Path("exp").rename("exp-old")
        Path("exp/s").mkdir(parents=True)
        Path("exp/s/sweep.json").write_text("theirs\n")
        raise MemoryError

    with pytest.raises(MemoryError):
        runner.sweep(SweepConfig(values={"epochs": [20], "n_samples": [40]}, seeds=[0, 1], logdir="exp/s",
                                 progress=False), on_group=on_group)
    assert Path("exp/s/sweep.json").read_text() == "theirs\n"
    assert Path("exp-old/s/sweep.json").is_file()  # the moved one, as it was


@pytest.mark.parametrize("when", ["before the first checkpoint", "between groups", "before the results",
                                  "while the pictures are drawn"])
def test_a_sweep_whose_folder_is_renamed_while_it_runs_stops_and_never_writes_by_the_old_name(tmp_path, monkeypatch,
                                                                                               when):
    """A sweep's folder renamed mid-run: the sweep rebuilt the old name (mkdir parents=True) and wrote its results
    over those of a new sweep started there. It stops now, naming where its checkpoint went."""
    from torch_tanhnet.training.writer_lock import FolderMoved

    monkeypatch.chdir(tmp_path)
    folder, moved = tmp_path / "exp" / "s", tmp_path / "exp-old"

    def rename_and_start_another():
        if moved.exists():  # once: the resume below collects its results too
            return
        (tmp_path / "exp").rename(moved)
        folder.mkdir(parents=True)  # another sweep's folder now holds the name
        for name in ("results.csv", "sweep.json"):
            (folder / name).write_text("theirs\n")

    def on_group(group):
        if (when, group.index) in (("between groups", 1), ("before the first checkpoint", 0)):
            rename_and_start_another()

    if when == "before the results":
        collect = runner.collect
        monkeypatch.setattr(runner, "collect", lambda *a: (rename_and_start_another(), collect(*a))[1])
    if when == "while the pictures are drawn":  # a write under the old name then fails: "nothing was kept" said it
        from torch_tanhnet.sweep import board

        real = board.write_board

        def write_board(plan, results, groups, logdir):
            if moved.exists():  # the resume below draws them
                return real(plan, results, groups, logdir)
            rename_and_start_another()
            raise FileNotFoundError(2, "No such file or directory", str(logdir / "pictures" / "solved.png"))

        monkeypatch.setattr(board, "write_board", write_board)
    config = SweepConfig(values={"hidden": [2, 3], "epochs": [20], "n_samples": [40]}, seeds=[0, 1],
                         logdir="exp/s", progress=False)
    with pytest.raises(FolderMoved) as e:
        runner.sweep(config, on_group=on_group)
    assert sorted(os.listdir(folder)) == ["results.csv", "sweep.json"]  # another sweep's: not removed, not written
    assert all((folder / name).read_text() == "theirs\n" for name in os.listdir(folder))
    saved = when != "before the first checkpoint"
    line = ("'exp/s' was renamed, moved or removed while it ran (another folder stands at that name now); nothing "
            "more was written by that name; it is now 'exp-old/s'" + (": continue it there with {}" if saved else ""))
    assert str(e.value) == line.format("resume=True")  # Python's words from Python, the flag from sweep.py
    assert e.value.for_command_line() == line.format("--resume")
    assert (moved / "s" / "checkpoint.pt").is_file() == saved
    if not saved:
        return
    resumed = runner.sweep(dataclasses.replace(config, logdir="exp-old/s", resume=True))  # as the line says
    assert [r["hidden"] for r in resumed.results.rows] == [2, 2, 3, 3]


def test_a_logdir_too_long_for_the_deepest_file_is_refused_before_training(tmp_path, monkeypatch, capsys):
    """A --logdir of about 4000 characters: the sweep trained, wrote results.csv, then failed on
    seeds/<setting>/seed=<s>/<session file> with advice to --resume that could never pass. Refused first, and
    nothing is left behind; a logdir a little shorter, whose deepest file fits, trains."""
    limit = os.pathconf(tmp_path, "PC_PATH_MAX")
    deep = "seeds/all/seed=1/events.out.tfevents.0000000000.hparams-session"
    parts = [str(tmp_path)] + ["d" * 200] * ((limit - len(deep) - len(str(tmp_path))) // 201)
    longest = "/".join(parts)  # absolute: check_logdir's probe file is named from the absolute path
    too_long = longest + "/" + "e" * (limit - 45 - len(longest) - 1)  # room for check_logdir's probe, not for deep
    assert len(too_long) + 1 + len(deep) > limit > len(too_long) + 40
    code, out, err = main("--seeds", "2", "--epochs", "1", "--gallery", "0", "--logdir", too_long, cwd=tmp_path,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("sweep.py: error: argument --logdir: '") and err.rstrip().endswith(
        "is too long for the files a sweep writes in it (the deepest, " + deep + ", written first under a temporary "
        f"name, makes a name of {len(too_long) + 1 + len(deep) + 18} bytes, past the {limit - 1} this system takes); "
        "choose a shorter --logdir"), err
    assert os.listdir(tmp_path) == []
    fits = "/".join(parts[:-1])
    code, out, err = main("--seeds", "2", "--epochs", "1", "--gallery", "0", "--logdir", fits, cwd=tmp_path,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err


def test_the_deepest_file_is_the_one_the_sweep_will_write(tmp_path, monkeypatch, capsys):
    """With a session a setting (--sessions settings) there is no seeds/<setting>/seed=<s>/ folder: a logdir long
    enough for <setting>/<session file> trains, though one run a session would not fit."""
    limit = os.pathconf(tmp_path, "PC_PATH_MAX")
    parts = [str(tmp_path)] + ["d" * 200] * ((limit - 100 - len(str(tmp_path))) // 201)
    longest = "/".join(parts)
    # all/<session>, written first as all/.<session>.<12 hex>.tmp: 69 bytes more; seeds/...: 83
    logdir = longest + "/" + "e" * (limit - 74 - len(longest) - 1)
    common = ("--seeds", "2", "--epochs", "1", "--gallery", "0", "--logdir", logdir)
    code, out, err = main(*common, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "is too long for the files a sweep writes in it" in err, err
    code, out, err = main(*common, "--sessions", "settings", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
