"""A training run's folder: nothing a user saved is lost, and what a stopped or failed start made is not left behind.

The default folder is claimed atomically (two runs in one second), a new run writes only into a new or empty
folder, a new run stopped before its first checkpoint removes what it made, non-finite initial weights are refused
before anything is written, and a full disk is one line (torch.save's RuntimeError, TensorBoard's writer thread).
"""

import errno
import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from test_reliability import SMALL, cli, one_error_line, small

from torch_tanhnet import TanhNet, hessian_eigenvalues
from torch_tanhnet.training import checkpoint, hparams, loop, setup
from torch_tanhnet.training.config import ConfigError, TrainConfig
from torch_tanhnet.training.loop import Run, train
from torch_tanhnet.training.world import World


def quick(**kw):
    return TrainConfig(**{**dict(n_samples=40, epochs=2, image_interval=10**6, progress=False), **kw})


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# 1. the default folder is claimed with mkdir: two runs in one second get two folders --------------------------

def test_two_runs_started_in_one_second_get_a_folder_each(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(setup, "run_name", lambda config, now=None: "0101-000000-moons")  # the same second
    real, inner = loop.load_split, []

    def load_split(config):  # the second run starts, and finishes, while the first reads its data
        if not inner:
            inner.append(None)
            inner[0] = train(quick(noise=0.2))
        return real(config)

    monkeypatch.setattr(loop, "load_split", load_split)
    outer = train(quick(noise=0.1))
    first = inner[0]
    assert {first.logdir, outer.logdir} == {Path("runs/0101-000000-moons"), Path("runs/0101-000000-moons-2")}
    for result, noise in ((first, 0.2), (outer, 0.1)):
        assert checkpoint.load(result.logdir / "checkpoint.pt")["config"]["noise"] == noise
        assert (result.logdir / hparams.SESSION_FILE).is_file()
        assert len(list(result.logdir.glob("events.out.tfevents.*.*.*.*"))) == 1  # its own events, unmixed


def test_a_refused_run_leaves_no_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "--data", "missing.csv")
    assert code == 2 and "missing.csv" in one_error_line(err)
    code, out, err = cli(capsys, "--init-scale", "1e39", *SMALL)
    assert code == 2
    assert list(tmp_path.iterdir()) == []


# 2. a new run writes only into a new or empty folder ----------------------------------------------------------

def killed_before_its_first_checkpoint(folder: Path) -> None:
    """What a run killed before its first checkpoint leaves: its HParams files and its events, no checkpoint.pt."""
    folder.mkdir()
    hparams.write_config(folder)
    hparams.write_session(folder, {"lr": 0.1}, "earlier")
    (folder / "events.out.tfevents.1700000000.host.1.0").write_bytes(b"earlier events")


@pytest.mark.parametrize("kind", ["killed-before-its-first-checkpoint", "other-files"])
def test_a_new_run_refuses_a_folder_that_holds_anything(tmp_path, monkeypatch, capsys, kind):
    folder = tmp_path / "run"
    if kind == "other-files":
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    else:
        killed_before_its_first_checkpoint(folder)
    before = contents(folder)
    code, out, err = cli(capsys, "--logdir", folder, "--epochs", "2", *SMALL)
    assert code == 2
    line = one_error_line(err)
    if kind == "other-files":  # what is there, named
        assert line.startswith(f"train.py: error: argument --logdir: {str(folder)!r} is not empty (")
        assert next(iter(before)) in line and line.endswith("choose another --logdir")
    else:  # a run's TensorBoard files alone: what they are, and that removing them starts it again
        assert line == (f"train.py: error: argument --logdir: {str(folder)!r} is not empty: the folder holds a run's "
                        "TensorBoard files and no checkpoint: a run stopped before its first checkpoint (killed, or "
                        "ended by a C library), with nothing to resume; remove the folder to start it again there; "
                        "or choose another --logdir")
    assert contents(folder) == before
    with pytest.raises(ConfigError, match=r"^logdir: .* is not empty.* choose another logdir$"):
        train(small(tmp_path, epochs=2))
    assert contents(folder) == before


def test_a_new_run_takes_an_empty_folder_and_resume_is_unchanged(tmp_path):
    (tmp_path / "run").mkdir()
    train(small(tmp_path, epochs=2))
    result = train(small(tmp_path, epochs=4, resume=True))
    assert result.epoch == 4 and result.steps_this_run == 2


def twins(t):
    """all_reduce over two processes that hold the same numbers (as every process does when it read the same data)."""
    return t.mul_(2)


def test_under_torchrun_only_rank_0_checks_the_folder(tmp_path, monkeypatch):
    killed_before_its_first_checkpoint(tmp_path / "run")
    before = contents(tmp_path / "run")
    with pytest.raises(ConfigError, match="is not empty"):
        Run.start(small(tmp_path), World(0, 2, all_reduce=twins, barrier=lambda: None))
    checked = []
    monkeypatch.setattr(loop, "check_new_logdir", checked.append)
    monkeypatch.setattr(loop, "check_logdir", checked.append)
    run = Run.start(small(tmp_path), World(1, 2, all_reduce=twins, barrier=lambda: None))
    run.close()
    assert checked == [] and contents(tmp_path / "run") == before  # rank 1 neither checks nor writes


# 3. a new run stopped before its first checkpoint removes what it made ------------------------------------------

def stop_at_the_first_picture(monkeypatch):
    def draw(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "draw", draw)


@pytest.mark.parametrize("where", ["new-folder", "default-folder", "empty-folder"])
def test_a_stop_before_the_first_step_removes_what_the_run_made(tmp_path, monkeypatch, capsys, where):
    monkeypatch.chdir(tmp_path)
    stop_at_the_first_picture(monkeypatch)
    if where == "empty-folder":
        (tmp_path / "mine").mkdir()
    argv = {"new-folder": ["--logdir", "deep/run"], "default-folder": [], "empty-folder": ["--logdir", "mine"]}[where]
    code, out, err = cli(capsys, *argv, "--epochs", "2", *SMALL)
    assert code == 130 and err == "train.py: interrupted before training began; nothing was saved\n"
    assert [p.name for p in tmp_path.iterdir()] == (["mine"] if where == "empty-folder" else [])
    if where == "empty-folder":
        assert list((tmp_path / "mine").iterdir()) == []


def fail_at_step_3(monkeypatch, error: BaseException) -> None:
    real = Run.train_step

    def train_step(self):
        if self.step == 2:
            raise error
        return real(self)

    monkeypatch.setattr(Run, "train_step", train_step)


@pytest.mark.parametrize("where", ["new-folder", "default-folder", "empty-folder"])
def test_a_run_that_diverges_before_its_first_checkpoint_leaves_the_folder_as_it_was(tmp_path, monkeypatch, capsys,
                                                                                      where):
    """--lr 1e38 gives NaN at step 2: the run's folder then held events and no checkpoint, which the same command
    with a smaller --lr refused ('is not empty') and --resume too ('no checkpoint'): a trap in the user's folder."""
    monkeypatch.chdir(tmp_path)
    if where == "empty-folder":
        (tmp_path / "mine").mkdir()
    argv = {"new-folder": ["--logdir", "deep/run"], "default-folder": [], "empty-folder": ["--logdir", "mine"]}[where]
    code, out, err = cli(capsys, *argv, "--lr", "1e38", "--epochs", "20", "--checkpoint-interval", "5", *SMALL)
    assert code == 1
    assert re.fullmatch(r"train\.py: error: the .* became NaN or infinite at step \d; try a smaller --lr "
                        r"\(it had no checkpoint yet: nothing of it was kept\)", one_error_line(err))
    assert [p.name for p in tmp_path.iterdir()] == (["mine"] if where == "empty-folder" else [])
    if where == "empty-folder":
        assert list((tmp_path / "mine").iterdir()) == []
    code, out, err = cli(capsys, *argv, "--epochs", "2", *SMALL)  # the same command with a sound --lr
    assert code == 0 and err == ""


@pytest.mark.parametrize("error", [RuntimeError("a fault of the loop's own"), OSError(errno.ENOSPC, "No space left"),
                                   KeyboardInterrupt()], ids=["error", "full-disk", "interrupt"])
def test_any_error_before_the_first_checkpoint_leaves_the_folder_as_it_was(tmp_path, monkeypatch, error):
    fail_at_step_3(monkeypatch, error)
    with pytest.raises(BaseException) as raised:
        train(small(tmp_path, epochs=20, checkpoint_interval=5))
    assert isinstance(raised.value, type(error)) or "No space left" in str(raised.value)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert train(small(tmp_path, epochs=2)).global_step == 2


@pytest.mark.parametrize("resume", [False, True], ids=["after-its-first-checkpoint", "resumed"])
def test_an_error_after_a_checkpoint_keeps_it_and_the_run_resumes(tmp_path, monkeypatch, resume):
    if resume:
        train(small(tmp_path, epochs=2, checkpoint_interval=1))
    saved, real_save, real_check = {}, Run.save, loop.check_finite

    def save(self):
        real_save(self)
        saved[self.step] = (self.logdir / "checkpoint.pt").read_bytes()

    def check_finite(loss, model, step, world):
        real_check(loss * float("nan") if step == 4 else loss, model, step, world)

    monkeypatch.setattr(Run, "save", save)
    monkeypatch.setattr(loop, "check_finite", check_finite)
    with pytest.raises(loop.TrainingDiverged, match=r"step 4; try a smaller lr \(the last good checkpoint is kept\)$"):
        train(small(tmp_path, epochs=20, checkpoint_interval=1, resume=resume))
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == saved[3]
    monkeypatch.undo()
    assert train(small(tmp_path, epochs=6, resume=True)).steps_this_run == 3


def test_a_stop_before_a_resumed_runs_first_step_leaves_the_run_as_it_was(tmp_path, monkeypatch):
    train(small(tmp_path, epochs=2))
    before = contents(tmp_path / "run")
    stop_at_the_first_picture(monkeypatch)
    monkeypatch.setattr(Run, "train_step", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train(small(tmp_path, epochs=4, resume=True))
    assert contents(tmp_path / "run") == before


# 4. weights too large for the dtype -------------------------------------------------------------------------

def test_an_init_scale_too_large_for_the_dtype_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "--init-scale", "1e39", "--logdir", "run", "--epochs", "2", *SMALL)
    assert code == 2
    assert one_error_line(err) == ("train.py: error: argument --init-scale: 1e+39 makes the initial weights infinite "
                                   "or NaN in float32; choose a smaller --init-scale or --dtype float64")
    assert list(tmp_path.iterdir()) == []


def test_huge_float64_weights_train_without_a_numpy_warning(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = train(small(tmp_path, init_scale=1e300, dtype="float64", epochs=2, image_interval=1))
    assert result.global_step == 2


def test_hessian_eigenvalues_of_a_non_finite_hessian_are_a_value_error():
    torch.manual_seed(0)
    net = TanhNet(2, 3)
    with torch.no_grad():  # --init-scale 1e39 in float32: infinite weights, a Hessian of NaNs
        net.U.mul_(1e39)
        net.W.mul_(1e39)
    X = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, :1] > 0).float()
    with pytest.raises(ValueError, match=r"^the Hessian holds NaN or infinite numbers \(U, W hold NaN or infinite "
                                         r"numbers\); it has no eigenvalues$"):
        hessian_eigenvalues(net, X, y)
    good = TanhNet(2, 3)
    with pytest.raises(ValueError, match=r"\(y holds NaN or infinite numbers\)"):
        hessian_eigenvalues(good, X, torch.full_like(y, float("nan")))


# 5. a full disk is one line, and the checkpoint saved before it is kept ------------------------------------

def test_torch_saves_runtime_error_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    real, calls = torch.save, []

    def save(obj, f):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"PK partial")
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4416 vs 4310")
        real(obj, f)

    monkeypatch.setattr(checkpoint.torch, "save", save)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 0))
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "20", "--checkpoint-interval", "5", *SMALL)
    assert code == 1
    path = str(tmp_path / "run" / "checkpoint.pt")
    assert one_error_line(err) == (f"train.py: error: cannot save the checkpoint {path!r}: No space left on device "
                                   "(the last checkpoint is kept as it was)")
    monkeypatch.undo()
    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt")["global_step"] == 5
    assert not list((tmp_path / "run").glob(".checkpoint.pt.*.tmp"))


@pytest.mark.parametrize("what", ["checkpoint", "events at the start", "events while training"])
def test_a_new_run_failing_to_write_before_its_first_checkpoint_says_nothing_was_kept(tmp_path, monkeypatch, capsys,
                                                                                      what):
    # it said "(the previous checkpoint, if any, is kept as it was)", or nothing, while its folder was removed
    from torch_tanhnet.training import logger

    calls = []

    def full(*args, **kwargs):
        calls.append(1)
        if what != "events while training" or len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    if what == "checkpoint":
        monkeypatch.setattr(checkpoint, "replacing", full)
    elif what == "events at the start":
        monkeypatch.setattr(logger.Logger, "check", lambda self: full())
    else:
        scalars = logger.Logger.scalars
        monkeypatch.setattr(logger.Logger, "scalars", lambda self, *a, **k: (full(), scalars(self, *a, **k)))
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "20", *SMALL)
    assert code == 1
    line = one_error_line(err)
    assert "No space left on device (" in line and line.endswith("nothing of it was kept)")
    assert not (tmp_path / "run").exists()


def test_tensorboards_writer_failing_is_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch, capsys):
    from tensorboard.summary.writer.record_writer import RecordWriter

    real, calls = RecordWriter.write, []

    def write(self, data):
        calls.append(1)
        if len(calls) >= 40:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, data)

    monkeypatch.setattr(RecordWriter, "write", write)
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "400", "--checkpoint-interval", "5",
                         "--log-interval", "1", *SMALL)
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("train.py: error: cannot save TensorBoard's events in ") and "No space left" in line
    monkeypatch.undo()
    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt")["global_step"] >= 5


def test_a_real_full_disk_is_one_line(full_disk, capsys):
    code, _, err = cli(capsys, "--logdir", full_disk / "run", "--epochs", "40", "--checkpoint-interval", "5",
                       "--hidden", "40", *SMALL)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: cannot save "), err
    assert "No space left on device" in lines[0]


def test_of_two_runs_into_one_new_folder_at_once_one_goes_on_and_the_other_writes_nothing(tmp_path, monkeypatch):
    """Both passed the check that the folder was empty (the race a real pair of processes runs); the one whose
    first file came second stops with one line, and the first run's file stays as it was."""
    folder = tmp_path / "same"
    folder.mkdir()
    (folder / hparams.CONFIG_FILE).write_bytes(b"the other run's")
    monkeypatch.setattr(loop, "check_new_logdir", lambda logdir: None)  # as if checked before the other run wrote
    with pytest.raises(ConfigError, match="'.*same' was just taken by another run started at the same moment"):
        train(small(tmp_path, logdir=str(folder)))
    assert [p.name for p in folder.iterdir()] == [hparams.CONFIG_FILE]
    assert (folder / hparams.CONFIG_FILE).read_bytes() == b"the other run's"


@pytest.mark.parametrize("saved", [False, True])
def test_a_run_whose_folder_is_renamed_while_it_runs_stops_and_leaves_the_folder_at_its_name_alone(
        tmp_path, monkeypatch, capsys, saved):
    """A run's folder renamed mid-run, and another folder made at its name: the run's checkpoint save made the name
    again (mkdir parents=True) and TensorBoard's writer wrote events into it; on stopping, discard() removed the
    files of that name there (another run's HParams files)."""
    from torch_tanhnet.training import logger

    monkeypatch.chdir(tmp_path)
    calls, scalars = [], logger.Logger.scalars

    def rename_at_step_30(self, values, step, *args, **kwargs):
        calls.append(step)
        if step >= 30 and not Path("exp-old").exists():
            self.writer.flush()  # TensorBoard's writer thread idle: it checks no folder between these two lines
            Path("exp").rename("exp-old")
            Path("exp/r").mkdir(parents=True)
            for name in ("events.out.tfevents.0000000000.hparams-config", "notes.txt"):  # another run's, a user's
                Path("exp/r", name).write_text("theirs")
        return scalars(self, values, step, *args, **kwargs)

    monkeypatch.setattr(logger.Logger, "scalars", rename_at_step_30)
    code, out, err = cli(capsys, "--logdir", "exp/r", "--epochs", "200", "--log-interval", "10",
                         "--checkpoint-interval", "20" if saved else "1000", *SMALL)
    assert code == 1
    line = one_error_line(err)
    assert "'exp/r' was renamed, moved or removed while it ran (another folder stands at that name now); nothing " \
           "more was written by that name; it is now 'exp-old/r'" in line
    assert line.endswith(": continue it there with --resume (the moved folder is left as it was)" if saved else
                         "it is now 'exp-old/r' (the moved folder is left as it was)")
    assert sorted(os.listdir("exp/r")) == ["events.out.tfevents.0000000000.hparams-config", "notes.txt"]
    assert all(Path("exp/r", name).read_text() == "theirs" for name in os.listdir("exp/r"))
    assert (Path("exp-old/r/checkpoint.pt").is_file()) == saved


def test_a_relative_logdir_after_os_chdir_stops_saying_so_and_lets_its_folder_go(tmp_path, monkeypatch):
    # a notebook's %cd while a run trained from Python: "'myrun' was renamed, moved or removed" of a folder nobody
    # touched, and the lock, released by a name that now led elsewhere, stayed for the life of the process
    from torch_tanhnet.training import logger, writer_lock
    from torch_tanhnet.training.checkpoint import SaveError
    from torch_tanhnet.training.loop import train

    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "myrun").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    scalars = logger.Logger.scalars

    def chdir_at_step_30(self, values, step, *args, **kwargs):
        if step >= 30 and os.getcwd() != str(tmp_path / "b"):
            os.chdir(tmp_path / "b")
            writer_lock.hold(Path("myrun"))  # another run of this process starts there, by the same relative name
        return scalars(self, values, step, *args, **kwargs)

    monkeypatch.setattr(logger.Logger, "scalars", chdir_at_step_30)
    with pytest.raises(SaveError) as e:
        train(small(tmp_path, logdir="myrun", epochs=200, checkpoint_interval=20))
    assert f"'myrun' names another folder now: the working directory changed while it ran (to " \
           f"{str(tmp_path / 'b')!r})" in str(e.value)
    assert f"it is {str(tmp_path / 'a' / 'myrun')!r}: give an absolute folder" in str(e.value)
    assert os.listdir(tmp_path / "b" / "myrun") == []  # nothing written by the name in the new directory
    assert (tmp_path / "a" / "myrun" / "checkpoint.pt").is_file()
    assert str(tmp_path / "a" / "myrun") not in writer_lock._held  # let go: another process's --resume gets it
    assert str(tmp_path / "b" / "myrun") in writer_lock._held  # the other run's lock untouched
    writer_lock.release(tmp_path / "b" / "myrun")


def test_tensorboards_thread_writes_by_the_absolute_name_whatever_os_chdir_does_between_check_and_write(
        tmp_path, monkeypatch):
    # the race behind a CI failure: TensorBoard's thread checked the watch, the main thread changed directory, and
    # the thread's write opened the events file by its relative name in the new directory
    from torch_tanhnet.training import logger
    from torch_tanhnet.training.writer_lock import Watch

    (tmp_path / "a" / "myrun").mkdir(parents=True)
    (tmp_path / "b" / "myrun").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.setattr(Watch, "check", lambda self: None)  # every check falls before the chdir below
    log = logger.Logger(Path("myrun"), True, None, TanhNet())
    os.chdir(tmp_path / "b")
    log.scalars({"loss/train": 0.5}, 1)
    log.flush()
    log.close()
    assert os.listdir(tmp_path / "b" / "myrun") == []
    assert [p.name[:19] for p in (tmp_path / "a" / "myrun").iterdir()] == ["events.out.tfevents"]


def test_the_watch_names_a_working_directory_since_removed(tmp_path, monkeypatch):
    from torch_tanhnet.training.writer_lock import FolderMoved, Watch

    (tmp_path / "run").mkdir()
    (tmp_path / "gone").mkdir()
    monkeypatch.chdir(tmp_path)
    watch = Watch(Path("run"))
    os.chdir(tmp_path / "gone")
    (tmp_path / "gone").rmdir()  # os.getcwd() raises FileNotFoundError now
    with pytest.raises(FolderMoved, match=r"the working directory changed while it ran \(to a folder since removed\)"):
        watch.check()


def test_a_run_renamed_while_it_trained_from_python_says_resume_in_pythons_words(tmp_path, monkeypatch):
    """train() said "continue it there with --resume" to a Python caller, whose setting is resume=True."""
    from torch_tanhnet.training import logger
    from torch_tanhnet.training.checkpoint import SaveError
    from torch_tanhnet.training.loop import train

    monkeypatch.chdir(tmp_path)
    scalars = logger.Logger.scalars

    def rename_at_step_30(self, values, step, *args, **kwargs):
        if step >= 30 and not Path("exp-old").exists():
            Path("exp").rename("exp-old")
        return scalars(self, values, step, *args, **kwargs)

    monkeypatch.setattr(logger.Logger, "scalars", rename_at_step_30)
    with pytest.raises(SaveError) as e:
        train(small(tmp_path, logdir="exp/r", epochs=200, checkpoint_interval=20))
    assert str(e.value).endswith("it is now 'exp-old/r': continue it there with resume=True (the moved folder is "
                                 "left as it was)"), str(e.value)
    assert e.value.for_command_line().endswith(": continue it there with --resume (the moved folder is left as it "
                                               "was)")


def test_a_moved_folders_error_pickles_and_copies_as_it_was():
    """sweep() raises FolderMoved to its caller: from a process pool it is pickled, which its (text, folder)
    constructor broke (OSError pickles (errno, strerror, filename))."""
    import copy
    import pickle

    from torch_tanhnet.training.writer_lock import FolderMoved

    e = FolderMoved("'exp' was renamed, moved or removed while it ran", Path("exp"))
    for again in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
        assert type(again) is FolderMoved and str(again) == str(e) and again.filename == "exp"
        assert again.for_command_line() == e.for_command_line() and again.errno == e.errno
