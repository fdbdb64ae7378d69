"""Hostile input and faults, as issue 13's campaign met them: each class of fault, not only the listed case.

scripts/train.py's main() runs in this process (its exit code, stdout and stderr), which is
fast; real processes are in test_signals.py and test_train_cli.py where the process is the point.
"""

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import load_script
from test_data import hostile_files

from torch_tanhnet.training import checkpoint
from torch_tanhnet.training.config import PER_INVOCATION, TrainConfig
from torch_tanhnet.training.loop import train

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
_spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)


def cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``train.py argv`` run in this process."""
    try:
        code = train_script.main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single line a bad input gives (no usage block, no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("train.py: error: "), err
    return lines[0]


SMALL = ["--n-samples", "60", "--image-interval", "1000000", "--no-progress"]


def small(tmp_path, **kw):
    return TrainConfig(**{**dict(n_samples=60, epochs=10, log_interval=5, image_interval=10**6,
                                 logdir=str(tmp_path / "run"), progress=False), **kw})


# 2. --dry-run and --no-progress belong to one invocation, not to the run ------------------------------

def test_settings_of_one_invocation_are_not_saved_with_the_run(tmp_path):
    train(small(tmp_path, dry_run=True))
    saved = checkpoint.load(tmp_path / "run" / "checkpoint.pt")["config"]
    assert PER_INVOCATION == {"dry_run", "progress"}
    assert not PER_INVOCATION & set(saved)
    assert {"lr", "hidden", "epochs", "seed"} <= set(saved)


def test_a_dry_run_leaves_nothing_that_a_later_resume_inherits(tmp_path, capsys):
    run = tmp_path / "dry"
    assert cli(capsys, "--dry-run", "--epochs", "30", "--logdir", run, *SMALL)[0] == 0
    assert checkpoint.load(run / "checkpoint.pt")["global_step"] == 5
    code, out, err = cli(capsys, "--resume", "--epochs", "30", "--logdir", run)
    assert code == 0, err
    assert checkpoint.load(run / "checkpoint.pt")["global_step"] == 30  # the whole run, not 5 more steps


@pytest.mark.parametrize("name,stale", [("dry_run", True), ("progress", False)])
def test_an_older_checkpoint_holding_a_setting_of_one_invocation_is_read_without_it(tmp_path, name, stale):
    train(small(tmp_path, epochs=4))
    path = tmp_path / "run" / "checkpoint.pt"
    state = checkpoint.load(path)
    state.pop("format")
    state["config"][name] = stale  # as checkpoints written before this change hold it
    checkpoint.save_atomic(state, path)
    result = train(small(tmp_path, epochs=12, resume=True), given={"logdir", "resume", "epochs"})
    assert result.global_step == 12  # a stale dry_run would have stopped after 5 more steps
    assert not PER_INVOCATION & set(checkpoint.load(path)["config"])


def test_a_dry_run_without_a_logdir_keeps_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = train(TrainConfig(dry_run=True, progress=False))
    assert result.global_step == 5 and not result.kept and not result.logdir.exists()
    code, out, err = cli(capsys, "--dry-run")
    assert code == 0 and "dry run: nothing kept" in out and "tensorboard" not in out
    assert list(tmp_path.iterdir()) == []


# 3. an unusable kernel cache: torch ops, one warning (the cases themselves: test_fast.py) --------------

def test_training_with_an_unwritable_kernel_cache_runs_on_torch_ops(tmp_path, monkeypatch, capsys):
    from torch_tanhnet.kernels import cpu

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TORCH_TANHNET_CACHE", str(tmp_path / "a-file" / "cache"))  # as at a fresh start
    monkeypatch.delenv("TORCH_TANHNET_NO_EXTENSION", raising=False)
    monkeypatch.setattr(cpu, "_cache", {})
    monkeypatch.setattr(cpu, "_warned", False)
    monkeypatch.setattr(cpu, "_compiler", lambda: "cc")
    with pytest.warns(RuntimeWarning, match="kernel cache") as seen:
        code, out, err = cli(capsys, "--dry-run")
    assert code == 0, err
    assert len([w for w in seen if "kernel cache" in str(w.message)]) == 1


# errors: a malformed command line, a bad value or a bad file: one line each ----------------------------

@pytest.mark.parametrize("script, argv, line", [
    ("train", ["--epochs", "many"], "train.py: error: argument --epochs: invalid int value: 'many'"),
    ("train", ["--epochs", "1e3"], "train.py: error: argument --epochs: invalid int value: '1e3'"),
    ("train", ["--lr", "0.1", "0.5"], "train.py: error: unrecognized arguments: 0.5 (each flag takes one value; "
                                      "scripts/sweep.py trains several)"),
    ("train", ["--learning-rate", "0.1"], "train.py: error: unrecognized arguments: --learning-rate 0.1 (train.py "
                                          "--help lists its flags)"),
    ("train", ["--epoch", "5"], "train.py: error: unrecognized arguments: --epoch 5 (train.py --help lists its "
                                "flags)"),  # never read as --epochs
    ("sweep", ["--seed", "3"], "sweep.py: error: argument --seed: sweep.py takes --seeds: a count N (seeds 0 to N-1), "
                               "a list, or A:B; train.py's --seed 3 is --seeds 3:4 here"),
    ("sweep", ["--hid", "3"], "sweep.py: error: unrecognized arguments: --hid 3 (sweep.py --help lists its flags)"),
    ("check_gradients", ["--nn", "3"], "check_gradients.py: error: unrecognized arguments: --nn 3 "
                                       "(check_gradients.py --help lists its flags)"),
    ("bench", ["--size", "3"], "bench.py: error: unrecognized arguments: --size 3 (bench.py --help lists its flags)"),
])
def test_a_malformed_command_line_is_one_line_and_no_flag_is_abbreviated(capsys, script, argv, line):
    """argparse printed its usage block above the error (8 lines for --epochs 1e3 in train.py), and took a flag's
    abbreviation: sweep.py --seed 3 was --seeds 3, and trained seeds 0, 1 and 2 (an error audit)."""
    with pytest.raises(SystemExit) as e:
        load_script(script).main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err == line + "\n"


@pytest.mark.parametrize("argv", [["--lr", "-1"], ["--dataset", "blobs"], ["--data", "missing.csv"],
                                  ["--resume", "--logdir", "nothing-here"]])
def test_a_bad_value_of_a_well_formed_flag_is_one_line_without_the_usage(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert "usage" not in one_error_line(err)


# 5, 6. CSV files: a byte-order mark, a first row with a typo, files that are not text CSV ------------------

def test_a_csv_with_a_byte_order_mark_and_no_header_keeps_its_first_row(tmp_path, capsys):
    rows = [(0.1 * i, 0.05 * i, i % 2) for i in range(1, 31)]
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbf" + "".join(f"{a},{b},{c}\n" for a, b, c in rows).encode())
    result = train(TrainConfig(data=str(tmp_path / "b.csv"), epochs=1, logdir=str(tmp_path / "run"), progress=False))
    data = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    assert result.global_step == 1 and data["global_step"] == 1
    from torch_tanhnet.training.setup import load_split

    s = load_split(TrainConfig(data=str(tmp_path / "b.csv")))
    assert s.X_train.shape[0] + s.X_test.shape[0] == 30
    torch.testing.assert_close(torch.cat([s.X_train, s.X_test]).sum(0),
                               torch.tensor([sum(r[0] for r in rows), sum(r[1] for r in rows)], dtype=torch.float64))


@pytest.mark.parametrize("kind", list(hostile_files()) + ["typo-in-first-row", "a-folder"])
def test_a_data_file_that_is_not_a_text_csv_is_one_error_line_and_exit_2(tmp_path, monkeypatch, capsys, kind):
    monkeypatch.chdir(tmp_path)
    if kind == "a-folder":
        (tmp_path / "d.csv").mkdir()
    elif kind == "typo-in-first-row":
        (tmp_path / "d.csv").write_text("0.1,0.2x,1\n0.2,0.1,0\n0.3,0.3,1\n")
    else:
        (tmp_path / "d.csv").write_bytes(hostile_files()[kind])
    code, out, err = cli(capsys, "--data", "d.csv", "--logdir", "run")
    assert code == 2
    assert one_error_line(err).startswith("train.py: error: d.csv" if kind != "a-folder" else
                                          "train.py: error: data file 'd.csv' is not a regular file (a folder)")
    assert not (tmp_path / "run").exists()


# 7. an unusable --logdir is one line before anything runs; a full disk at a save is one line, exit 1 -----

def unusable_logdir(kind, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    if kind == "a-regular-file":
        return "a-file"
    if kind == "under-a-regular-file":
        return "a-file/run"
    if kind == "under-proc":
        if not Path("/proc/self").exists():
            pytest.skip("no /proc here")
        return "/proc/nope/run"
    if kind == "300-character-name":
        return "r" * 300
    if kind == "path-too-long":
        return "/".join(["d" * 200] * 30)
    if kind == "read-only-file-system":
        import errno

        from torch_tanhnet.training import setup

        def read_only(*a, **k):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        monkeypatch.setattr(setup.tempfile, "mkstemp", read_only)
        return "run"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["a-regular-file", "under-a-regular-file", "under-proc", "300-character-name",
                                  "path-too-long", "read-only-file-system"])
def test_an_unusable_logdir_is_one_line_and_exit_2_before_anything_runs(tmp_path, monkeypatch, capsys, kind):
    monkeypatch.chdir(tmp_path)
    logdir = unusable_logdir(kind, tmp_path, monkeypatch)
    from torch_tanhnet.training import loop

    def no_data(config):
        raise AssertionError("the data were loaded before the folder was checked")

    monkeypatch.setattr(loop, "load_split", no_data)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli(capsys, "--logdir", logdir, *SMALL)
    assert code == 2
    assert one_error_line(err).startswith("train.py: error: argument --logdir: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing left behind


def test_checking_the_logdir_leaves_no_folder_behind_when_the_data_are_bad(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "--logdir", "deep/er/run", "--data", "missing.csv")
    assert code == 2 and "missing.csv" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def failing_on_call(n, error):
    """A stand-in that raises ``error`` on its n-th call and otherwise calls the real function."""
    calls = []

    def wrap(real):
        def f(*a, **k):
            calls.append(1)
            if len(calls) == n:
                raise error
            return real(*a, **k)
        return f
    return wrap


def fail_inside_saves(monkeypatch, module, name, n, error):
    """``module.name`` raises ``error`` on its n-th call made inside checkpoint.save_atomic (other writers, such as
    the HParams files, call os.replace and os.fsync too)."""
    inside, calls = [], []
    real_save, real = checkpoint.save_atomic, getattr(module, name)

    def save_atomic(*a, **k):
        inside.append(1)
        try:
            return real_save(*a, **k)
        finally:
            inside.pop()

    def f(*a, **k):
        if inside:
            calls.append(1)
            if len(calls) == n:
                raise error
        return real(*a, **k)

    monkeypatch.setattr(checkpoint, "save_atomic", save_atomic)
    monkeypatch.setattr(module, name, f)


@pytest.mark.parametrize("where", ["torch.save", "os.replace", "fsync"])
@pytest.mark.parametrize("code_name", ["ENOSPC", "EDQUOT", "EIO", "EROFS"])
def test_a_failed_save_is_one_line_exit_1_and_the_previous_checkpoint_is_whole(tmp_path, monkeypatch, capsys,
                                                                               where, code_name):
    import errno

    error = OSError(getattr(errno, code_name), os.strerror(getattr(errno, code_name)))
    # the second save fails: its torch.save, its os.replace, or its file's fsync (each save fsyncs file and folder)
    module, name, n = {"torch.save": (checkpoint.torch, "save", 2), "os.replace": (checkpoint.os, "replace", 2),
                       "fsync": (checkpoint.os, "fsync", 3)}[where]
    fail_inside_saves(monkeypatch, module, name, n, error)
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "20", "--checkpoint-interval", "5",
                         *SMALL)
    assert code == 1
    line = one_error_line(err)
    assert str(tmp_path / "run" / "checkpoint.pt") in line and os.strerror(getattr(errno, code_name)) in line
    monkeypatch.undo()
    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt")["global_step"] == 5
    assert not list((tmp_path / "run").glob(".checkpoint.pt.*.tmp"))


def test_a_full_disk_while_the_run_is_set_up_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    import errno

    error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "replace", failing_on_call(1, error)(os.replace))  # the first file the run writes
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "5", *SMALL)
    assert code == 1 and "No space left on device" in one_error_line(err)


def test_a_failed_write_of_tensorboard_events_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    import errno

    from torch_tanhnet.training.logger import Logger

    error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "events.out.tfevents.x"))
    monkeypatch.setattr(Logger, "scalars", failing_on_call(3, error)(Logger.scalars))
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "20", "--log-interval", "2", *SMALL)
    assert code == 1 and "No space left on device" in one_error_line(err)


# 8. features the run's dtype cannot hold, or that cannot be standardised, are bad input -----------------

def features_csv(path, column, value, n=20):
    """n rows of small features, one column of them replaced by ``value`` (a float or a function of the row)."""
    lines = []
    for i in range(n):
        x = [0.1 * i, 0.2 * (n - i)]
        x[column] = value(i) if callable(value) else (value if i == 3 else x[column])
        lines.append(f"{x[0]!r},{x[1]!r},{i % 2}")
    path.write_text("\n".join(lines) + "\n")
    return path


OUT_OF_RANGE = [  # (column, value, flags, what the one line must say; None: a run that trains)
    (0, 1e40, [], "feature x1 has the value 1e+40, beyond float32's range"),
    (1, -3.5e38, [], "feature x2 has the value -3.5e+38, beyond float32's range"),
    (0, lambda i: 1e-50 * (i + 1), [], "feature x1 has values no larger than 2e-49, all zero in float32"),
    # near float64's limit but standardisable: their squares overflow, and their distance from the mean, but not
    # their mean, deviation or standardised values (tests/test_data.py: what cannot be standardised)
    (1, lambda i: 1.7e308 if i % 3 == 0 else -1.7e308, ["--standardize"], None),
    (1, lambda i: (-1) ** i * 1e308, ["--standardize"], None),
    (0, lambda i: 1e308 * (0.5 + i % 2), ["--standardize", "--dtype", "float64"], None),
    (0, 1e40, ["--dtype", "float64"], None),
    (0, 1e40, ["--standardize"], None),
    (0, lambda i: 1e-50 * (i + 1), ["--standardize"], None),
    (1, 3.0e38, [], None),
]


@pytest.mark.parametrize("column,value,flags,message", OUT_OF_RANGE)
def test_features_out_of_the_dtypes_range_are_bad_input_naming_column_and_value(tmp_path, capsys, column, value,
                                                                               flags, message):
    data = features_csv(tmp_path / "d.csv", column, value)
    code, out, err = cli(capsys, "--data", data, "--dry-run", *flags)
    if message is None:
        assert code == 0, err
        return
    assert code == 2
    assert message in one_error_line(err)


# errors speak the caller's language: field names from Python, flags from the command line ----------------

@pytest.mark.parametrize("kw,python,command_line", [
    ({"lr": -1.0}, "lr: must be a positive number, got -1.0", "argument --lr: must be a positive number"),
    ({"batch_size": 0}, "batch_size: must be a positive integer", "argument --batch-size: must be a positive"),
    ({"resume": True, "logdir": None}, "resume: needs logdir, the folder", "argument --resume: needs --logdir, the"),
    ({"test_fraction": 2.0}, "test_fraction: must be between", "argument --test-fraction: must be between"),
])
def test_a_bad_setting_is_named_as_python_names_it_and_as_the_command_line_does(kw, python, command_line):
    from torch_tanhnet.training.config import ConfigError

    with pytest.raises(ConfigError) as e:
        train(TrainConfig(progress=False, **kw))
    assert str(e.value).startswith(python) and e.value.field in kw
    assert e.value.for_command_line().startswith(command_line)
    assert "--" not in str(e.value)


def test_a_logdir_holding_a_run_says_how_to_continue_it_in_either_language(tmp_path, capsys):
    from torch_tanhnet.training.config import ConfigError

    train(small(tmp_path, epochs=2))
    with pytest.raises(ConfigError, match=r"^logdir: .* already holds a run \(checkpoint.pt\); continue it with "
                                          r"resume=True or choose another logdir$"):
        train(small(tmp_path, epochs=2))
    code, out, err = cli(capsys, "--logdir", tmp_path / "run")
    assert code == 2 and one_error_line(err).endswith("continue it with --resume or choose another --logdir")


def test_data_errors_name_settings_as_the_caller_does(capsys, tmp_path):
    from torch_tanhnet.training.data import DataError, make_dataset

    with pytest.raises(DataError, match=r"^n_samples must be at least 2, got 1$"):
        make_dataset("moons", 1)
    features_csv(tmp_path / "d.csv", 0, 1e40)
    with pytest.raises(DataError, match=r"use standardize=True or a dtype of float64$"):
        train(TrainConfig(data=str(tmp_path / "d.csv"), logdir=str(tmp_path / "r"), progress=False))
    code, out, err = cli(capsys, "--data", tmp_path / "d.csv", "--logdir", tmp_path / "r")
    assert one_error_line(err).endswith("use --standardize or a --dtype of float64")


# smaller: settings of the built-in data sets given with --data are refused, not silently ignored --------

@pytest.mark.parametrize("flag,value,field,python_value", [("--n-samples", "100", "n_samples", 100),
                                                           ("--noise", "0.1", "noise", 0.1),
                                                           ("--dataset", "moons", "dataset", "circles")])
def test_a_built_in_data_sets_setting_given_with_data_is_refused(tmp_path, capsys, flag, value, field, python_value):
    data = features_csv(tmp_path / "d.csv", 0, 0.5)
    code, out, err = cli(capsys, "--data", data, flag, value, "--dry-run")
    assert code == 2
    assert one_error_line(err).startswith(f"train.py: error: argument {flag}: applies to the built-in data sets, "
                                          f"not to --data '{data}'")
    # from Python, where a helper may carry a default of its own: said in a warning, and ignored
    with pytest.warns(UserWarning, match=rf"^{field}={python_value!r} applies to the built-in data sets, not to "
                                         rf"data '.*': it is ignored$"):
        assert train(TrainConfig(data=str(data), dry_run=True, progress=False, **{field: python_value})).global_step
    assert cli(capsys, "--data", data, "--dry-run")[0] == 0  # and without it, the file trains


# smaller: --resume of a run already at its total says so and changes nothing ----------------------------

def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("argv,asked", [(["--epochs", "3"], "--epochs 3"), (["--epochs", "6"], "--epochs 6"),
                                        ([], "its --epochs"), (["--epochs", "2", "--dry-run"], "--epochs 2")])
def test_resuming_a_run_already_at_its_total_changes_nothing(tmp_path, capsys, argv, asked):
    run = tmp_path / "run"
    assert cli(capsys, "--epochs", "6", "--logdir", run, *SMALL)[0] == 0
    before = snapshot(run)
    code, out, err = cli(capsys, "--resume", "--logdir", run, *argv)
    assert code == 0, err
    assert out.strip() == (f"the run in {run} is already at epoch 6 (step 6); {asked} asks for no more: "
                           "nothing changed (a larger --epochs continues it)")
    assert snapshot(run) == before  # the checkpoint's total, the events, the HParams files: all as they were


def test_resuming_a_finished_run_on_read_only_storage_changes_nothing_and_one_to_continue_is_refused(tmp_path, capsys,
                                                                                                     monkeypatch):
    # the folder's write check refused the first, which writes nothing (a read-only archive of finished runs)
    from torch_tanhnet.training import loop
    from torch_tanhnet.training.config import ConfigError

    run = tmp_path / "run"
    assert cli(capsys, "--epochs", "6", "--logdir", run, *SMALL)[0] == 0
    before = snapshot(run)

    def read_only(logdir, temporary=False):
        raise ConfigError("logdir", f"cannot create or write {str(logdir)!r} (Read-only file system)")

    monkeypatch.setattr(loop, "check_logdir", read_only)
    code, out, err = cli(capsys, "--resume", "--logdir", run)
    assert code == 0, err
    assert "is already at epoch 6 (step 6); its --epochs asks for no more: nothing changed" in out
    assert snapshot(run) == before
    code, out, err = cli(capsys, "--resume", "--logdir", run, "--epochs", "8")
    assert code == 2 and one_error_line(err) == (f"train.py: error: argument --logdir: cannot create or write "
                                                 f"{str(run)!r} (Read-only file system)")
    assert snapshot(run) == before


# smaller: a resumed run compares settings by what they mean ---------------------------------------------

@pytest.mark.parametrize("given,ok", [({"noise": 0.1}, True), ({"noise": None}, True), ({"noise": 0.2}, False),
                                      ({"batch_size": 48}, True), ({"batch_size": 10_000}, True),
                                      ({"batch_size": None}, True), ({"batch_size": 16}, False)])
def test_a_resumed_run_compares_settings_by_their_effective_values(tmp_path, given, ok):
    from torch_tanhnet.training.config import ConfigError

    train(small(tmp_path, epochs=2))  # moons' default noise (0.1) and the whole training set (48 samples) a batch
    resume = small(tmp_path, epochs=3, resume=True, **given)
    if ok:
        assert train(resume, given={"logdir", "resume", "epochs", *given}).global_step == 3
    else:
        with pytest.raises(ConfigError, match=rf"^{next(iter(given))}: .* differs from the checkpoint's"):
            train(resume, given={"logdir", "resume", "epochs", *given})


def test_the_command_line_resumes_with_the_data_sets_default_noise_given(tmp_path, capsys):
    assert cli(capsys, "--epochs", "2", "--logdir", tmp_path / "run", *SMALL)[0] == 0
    code, out, err = cli(capsys, "--resume", "--epochs", "3", "--noise", "0.1", "--logdir", tmp_path / "run")
    assert code == 0, err


@pytest.mark.parametrize("flag,value", [("--noise", "0.3"), ("--dataset", "moons"), ("--dataset", "xor"),
                                        ("--n-samples", "77")])
def test_resuming_a_data_file_run_refuses_a_built_in_data_sets_flag_as_a_new_run_does(tmp_path, capsys, flag, value):
    """--noise 0.3 was silently accepted and ignored, --dataset xor "differs from the checkpoint's 'moons'" and
    --n-samples 77 "from the checkpoint's 500", of a run on a CSV file."""
    points = tmp_path / "points.csv"
    points.write_text("".join(f"{i / 30 - 1:.3f},{(i * 3 % 11) / 5 - 1:.3f},{i % 2}\n" for i in range(60)))
    assert cli(capsys, "--data", points, "--epochs", "2", "--logdir", tmp_path / "run", "--no-progress")[0] == 0
    before = snapshot(tmp_path / "run")
    code, out, err = cli(capsys, "--resume", "--epochs", "3", flag, value, "--logdir", tmp_path / "run")
    assert code == 2 and one_error_line(err) == (f"train.py: error: argument {flag}: applies to the built-in data "
                                                 f"sets, not to --data {str(points)!r}; leave it out")
    assert snapshot(tmp_path / "run") == before
    with pytest.warns(UserWarning, match=r"^noise=0.3 applies to the built-in data sets, not to data .*: it is "
                                         r"ignored$"):  # from Python, as a new run: a warning, and it goes on
        train(TrainConfig(logdir=str(tmp_path / "run"), resume=True, epochs=3, data=str(points), noise=0.3,
                          progress=False))


# smaller: a hand-edited checkpoint is refused in one line, whatever was changed ------------------------

BAD_VALUES = [None, "garbage", -1, 2.5, [1, 2], {"x": 1}, torch.zeros(3)]


def edited_runs(tmp_path, capsys):
    """A run at epoch 3, and a function that writes an edited copy of its checkpoint and resumes it to epoch 4:
    (exit code, stderr)."""
    run = tmp_path / "run"
    assert cli(capsys, "--epochs", "3", "--logdir", run, *SMALL)[0] == 0
    path = run / "checkpoint.pt"
    good = checkpoint.load(path)
    good.pop("format")

    def resume(state):
        checkpoint.save_atomic(state, path)
        code, out, err = cli(capsys, "--resume", "--epochs", "4", "--logdir", run)
        assert code in (0, 2), err
        if code == 2:
            one_error_line(err)  # the checkpoint's fault, or what its edit leads to (a data file that is not there)
        return code, err
    return good, resume


def test_a_checkpoint_missing_any_part_or_setting_is_refused_in_one_line(tmp_path, capsys):
    from torch_tanhnet.training.setup import REQUIRED

    good, resume = edited_runs(tmp_path, capsys)
    for key in good:
        state = {k: v for k, v in good.items() if k != key}
        code, err = resume(state)
        assert code == (0 if key in ("mean", "std") else 2), (key, err)  # mean and std are not read back
    for name in good["config"]:
        code, err = resume({**good, "config": {k: v for k, v in good["config"].items() if k != name}})
        assert code == (2 if name in REQUIRED else 0), (name, err)
        if name in REQUIRED:
            assert f"lacks the setting {name!r}" in err


def test_a_checkpoint_with_any_part_or_setting_of_the_wrong_kind_is_refused_in_one_line(tmp_path, capsys):
    good, resume = edited_runs(tmp_path, capsys)
    for key in [k for k in good if k not in ("mean", "std")]:
        for value in BAD_VALUES:  # a part of the wrong kind: refused (metrics {"x": 1} is a valid part)
            assert resume({**good, key: value})[0] == (0 if key == "metrics" and value == {"x": 1} else 2), key
    for i, name in enumerate(good["config"]):
        # a setting of the wrong kind: refused, or (for a setting of one invocation, which is ignored) resumed;
        # never a traceback. Two kinds of bad value a setting, taken in turn, so that every kind meets settings of
        # every type without running all 7 x 25 resumes (the suite's time)
        for value in (BAD_VALUES[i % len(BAD_VALUES)], BAD_VALUES[(i + 3) % len(BAD_VALUES)]):
            resume({**good, "config": {**good["config"], name: value}})
    # and the parts' insides: parameters of another shape, optimiser state, random state, position, data hash
    U = good["model"]["U"]
    for state in [{**good, "model": {**good["model"], "U": torch.zeros(U.shape[0] + 1, 2)}},
                  {**good, "model": {k: v for k, v in good["model"].items() if k != "c"}},
                  {**good, "optimizer": {**good["optimizer"], "state": {0: {"momentum_buffer": torch.zeros(7)}}}},
                  {**good, "optimizer": {"param_groups": []}},
                  {**good, "rng": {"torch": torch.zeros(3)}},
                  {**good, "batch": 5}, {**good, "global_step": 99},
                  {**good, "data_fingerprint": "0" * 64},
                  {**good, "metrics": {"loss/train": "low"}}]:
        assert resume(state)[0] == 2


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_checkpoint_whose_optimizer_disagrees_with_its_settings_is_refused_in_one_line(tmp_path, capsys, optimizer):
    """Resuming loads the optimizer as saved: an lr, momentum, nesterov, betas... other than the settings make would
    train on silently with those (the HParams still saying the settings'), or crash inside torch.optim."""
    from torch_tanhnet.training.setup import UPDATE, filled_in

    run = tmp_path / "run"
    assert cli(capsys, "--epochs", "3", "--optimizer", optimizer, "--logdir", run, *SMALL)[0] == 0
    path = run / "checkpoint.pt"
    good = checkpoint.load(path)
    good.pop("format")
    groups = good["optimizer"]["param_groups"]
    edited = [key for key in UPDATE if key in groups[0]]
    assert {"lr", "weight_decay"} <= set(edited) and len(edited) >= 5, edited
    kind = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    for key in edited:
        value = groups[0][key]
        other = (not value if isinstance(value, bool) else tuple(v / 2 for v in value) if isinstance(value, tuple)
                 else value / 2 + 0.01)
        for bad in (other, "x", None, torch.tensor(value if not isinstance(value, tuple) else 0.5), "missing"):
            group = {k: v for k, v in groups[0].items() if k != key or bad != "missing"}
            if bad != "missing":
                group[key] = bad
            checkpoint.save_atomic({**good, "optimizer": {**good["optimizer"], "param_groups": [group]}}, path)
            code, out, err = cli(capsys, "--resume", "--epochs", "4", "--logdir", run)
            if bad == "missing" and key in filled_in(kind):  # an older torch's group: read as torch fills it in
                assert code == 0, (key, err)
                continue
            assert code == 2 and f"its optimizer's {key} is " in one_error_line(err), (key, bad, err)
    for param_groups in ([], groups * 2, None, "x", [1]):
        checkpoint.save_atomic({**good, "optimizer": {**good["optimizer"], "param_groups": param_groups}}, path)
        code, out, err = cli(capsys, "--resume", "--epochs", "4", "--logdir", run)
        assert code == 2 and "its optimizer's param_groups" in one_error_line(err), err
    checkpoint.save_atomic(good, path)
    assert cli(capsys, "--resume", "--epochs", "4", "--logdir", run)[0] == 0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_checkpoint_an_older_torch_wrote_without_newer_optimizer_keys_resumes_as_uninterrupted(tmp_path, capsys,
                                                                                                optimizer):
    """torch adds keys to its optimizers' param groups (Adam's decoupled_weight_decay in torch 2.7) and fills them in
    when it loads a group without them: such a checkpoint (torch >= 2.3 is supported) resumes, and trains on as one
    that holds them does."""
    from torch_tanhnet.training.setup import UPDATE, filled_in

    kind = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    runs = {name: tmp_path / name for name in ("run", "old")}
    assert cli(capsys, "--epochs", "3", "--optimizer", optimizer, "--logdir", runs["run"], *SMALL)[0] == 0
    shutil.copytree(runs["run"], runs["old"])
    state = checkpoint.load(runs["old"] / "checkpoint.pt")
    state.pop("format")
    group = state["optimizer"]["param_groups"][0]
    newer = [key for key in UPDATE if key in group and key in filled_in(kind)]
    assert newer and (optimizer == "sgd" or "decoupled_weight_decay" in newer), newer
    state["optimizer"]["param_groups"] = [{k: v for k, v in group.items() if k not in newer}]
    checkpoint.save_atomic(state, runs["old"] / "checkpoint.pt")
    for run in runs.values():
        code, out, err = cli(capsys, "--resume", "--epochs", "6", "--logdir", run)
        assert code == 0, err
    ends = [checkpoint.load(run / "checkpoint.pt") for run in runs.values()]
    assert all(torch.equal(ends[0]["model"][k], ends[1]["model"][k]) for k in ends[0]["model"])


def test_a_key_missing_from_a_saved_param_group_counts_as_what_torch_fills_in():
    """Filled in, then compared: Nesterov's False is not a run's True; a key torch does not fill in stays missing."""
    from torch_tanhnet.training.setup import optimizer_settings_differ

    made = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9, nesterov=True)
    saved = [{k: v for k, v in made.param_groups[0].items() if k != "params"}]
    assert optimizer_settings_differ(made, saved) is None
    without = [{k: v for k, v in saved[0].items() if k != "nesterov"}]
    assert optimizer_settings_differ(made, without) == "nesterov is False (missing: torch reads it so), not the " \
                                                       "settings' True"
    assert optimizer_settings_differ(made, [{k: v for k, v in saved[0].items() if k != "lr"}]) == \
        "lr is missing, not the settings' 0.1"


def test_a_saved_optimizer_setting_of_another_kind_is_named_as_such():
    """'betas is [0.9, 0.999], not the settings' (0.9, 0.999)' left the user to spot the brackets."""
    from torch_tanhnet.training.setup import optimizer_settings_differ

    made = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    saved = {k: v for k, v in made.param_groups[0].items() if k != "params"}
    assert optimizer_settings_differ(made, [{**saved, "betas": [0.9, 0.999]}]) == \
        "betas is a list, [0.9, 0.999], where the settings hold a tuple, (0.9, 0.999)"
    assert optimizer_settings_differ(made, [{**saved, "lr": "0.1"}]) == \
        "lr is a str, '0.1', where the settings hold a number, 0.1"
    assert optimizer_settings_differ(made, [{**saved, "lr": torch.tensor(0.1)}]) == \
        "lr is 1 number as a float32 tensor, 0.10000000149011612 (torch.float32), where the settings hold a number, 0.1"
    assert optimizer_settings_differ(made, [{**saved, "lr": 0.2}]) == "lr is 0.2, not the settings' 0.1"  # one kind


# smaller: sizes beyond the machine's memory are one line, before anything is allocated -------------------

@pytest.mark.parametrize("flag,value", [("--hidden", 10**12), ("--n-samples", 10**14), ("--hidden", 10**9)])
def test_a_run_too_large_for_memory_is_one_line_naming_the_flag(tmp_path, capsys, flag, value):
    code, out, err = cli(capsys, flag, value, "--dry-run")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"train.py: error: argument {flag}: {value} ") and "would need at least" in line


def test_the_memory_estimate_refuses_only_what_cannot_fit():
    from torch_tanhnet.training.config import ConfigError
    from torch_tanhnet.training.setup import check_memory

    cpu = torch.device("cpu")
    check_memory(TrainConfig(), cpu, available=10**9)  # the defaults fit in 1 GB
    check_memory(TrainConfig(n_samples=10**6), cpu, available=10**9)
    with pytest.raises(ConfigError, match=r"^hidden: 10000 hidden units with 500 samples would need at least 4"):
        check_memory(TrainConfig(hidden=10_000), cpu, available=10**9)
    with pytest.raises(ConfigError, match=r"^n_samples: 100000000 samples would need at least 8.4 GB of memory, "
                                          r"more than the 1 GB this machine has free"):
        check_memory(TrainConfig(n_samples=10**8), cpu, available=10**9)


@pytest.mark.parametrize("where,error", [
    ("data", MemoryError()),
    ("model", RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 8000000000000 bytes. Error code 12 (Cannot allocate memory)")),
    ("step", torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")),
])
def test_memory_running_out_anyway_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys, where, error):
    from torch_tanhnet.training import loop

    def fail(*a, **k):
        raise error

    target = {"data": (loop, "load_split"), "model": (loop, "TanhNet"), "step": (loop.Run, "train_step")}[where]
    monkeypatch.setattr(*target, fail)
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "3", *SMALL)
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("train.py: error: out of memory (") and "--n-samples, --hidden or --batch-size" in line


# under `ulimit -v`, what failed near the limit was anything: a thread, a library's mapping, an import's SystemError
UNDER_A_LIMIT = [
    ("step", SystemError("error return without exception set"), "near"),
    ("step", RuntimeError("can't start new thread"), "near"),
    ("pictures", ImportError("/site-packages/PIL/_imaging.so: failed to map segment from shared object"), "far"),
    ("data", MemoryError(), "far"),
    ("model", TypeError("Couldn't build proto file into descriptor pool: out of memory"), "far"),
]


@pytest.mark.parametrize("where,error,peak", UNDER_A_LIMIT, ids=[f"{w}-{type(e).__name__}-{p}"
                                                                 for w, e, p in UNDER_A_LIMIT])
def test_anything_failing_for_memory_under_an_address_space_limit_is_one_line_naming_the_limit(
        tmp_path, monkeypatch, capsys, where, error, peak):
    """`train.py --dry-run` under `ulimit -v` 720000..780000: a thread that could not start, PIL that could not be
    mapped, Python's SystemError, each a traceback; a MemoryError said "try a smaller --n-samples" of 500 samples.
    An error that says it is memory, or any error with the address space used to within 128 MiB of the limit, is
    out of memory, and the line names the limit to raise."""
    from torch_tanhnet.training import logger, loop, setup

    limit = 700_000 * 1024
    monkeypatch.setattr(setup, "address_space_limit", lambda: limit)
    monkeypatch.setattr(setup, "mapped_peak", lambda: limit - (2**20 if peak == "near" else 2**30))
    monkeypatch.setattr(setup, "address_space_headroom", lambda: 2**30)  # room enough before training

    def fail(*a, **k):
        raise error

    target = {"data": (loop, "load_split"), "model": (loop, "TanhNet"), "step": (loop.Run, "train_step"),
              "pictures": (logger.Logger, "pictures")}[where]
    monkeypatch.setattr(*target, fail)
    args = SMALL if where != "pictures" else [a for a in SMALL if a not in ("--image-interval", "1000000")]
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "3", *args)
    assert code == 1, err
    first = str(error) or type(error).__name__
    assert one_error_line(err) == (f"train.py: error: out of memory ({first}) within this process's address-space "
                                   "limit of 717 MB (ulimit -v 700000); raise the limit, or try a smaller "
                                   "--n-samples, --hidden or --batch-size")


def test_a_folder_a_run_left_before_its_first_checkpoint_is_explained(tmp_path, capsys):
    """A run killed before its first checkpoint (SIGKILL, the OOM killer, libgomp's abort under ulimit -u 4) leaves
    its TensorBoard files alone: the same command said "not empty", --resume "no checkpoint", neither why nor what
    to do. Both say what the folder holds and that removing it starts the run again; nothing is removed."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("events.out.tfevents.0000000000.hparams-config", "events.out.tfevents.1796116779.vm.5900.0"):
        (run / name).write_bytes(b"")
    early = ("the folder holds a run's TensorBoard files and no checkpoint: a run stopped before its first checkpoint "
             "(killed, or ended by a C library), with nothing to resume; remove the folder to start it again there")
    code, out, err = cli(capsys, "--logdir", run, "--epochs", "3", *SMALL)
    assert code == 2 and one_error_line(err) == (f"train.py: error: argument --logdir: {str(run)!r} is not empty: "
                                                 f"{early}; or choose another --logdir")
    code, out, err = cli(capsys, "--logdir", run, "--epochs", "3", "--resume", *SMALL)
    assert code == 2 and one_error_line(err) == (f"train.py: error: no checkpoint at "
                                                 f"{str(run / 'checkpoint.pt')!r}: {early}")
    (run / "notes.txt").write_text("mine")  # anything else there: the plain refusal, naming what is there
    code, out, err = cli(capsys, "--logdir", run, "--epochs", "3", *SMALL)
    assert code == 2 and "is not empty (events.out.tfevents.0000000000.hparams-config, " in err
    assert len(list(run.iterdir())) == 3


def test_a_thread_that_cannot_start_under_ulimit_u_is_one_line(tmp_path, monkeypatch, capsys):
    """`ulimit -u 2` as another user: TensorBoard's writer thread could not start, a traceback ending in
    RuntimeError: can't start new thread. One line naming the limit; nothing kept of a new run."""
    from torch_tanhnet.training import logger, setup

    monkeypatch.setattr(setup, "address_space_limit", lambda: None)
    monkeypatch.setattr(setup, "_process_limit", lambda: 2)

    def fail(*a, **k):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(logger, "_writer_sorted_last", fail)
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "3", *SMALL)
    assert code == 1, err
    assert one_error_line(err) == ("train.py: error: cannot start a thread (can't start new thread): this user may run "
                                   "at most 2 processes and threads (ulimit -u 2); raise the limit, or end other "
                                   "processes")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("limit", [None, 700_000 * 1024])
def test_an_error_not_of_memory_is_not_called_out_of_memory(tmp_path, monkeypatch, capsys, limit):
    """The other side: an error that does not say memory, with the address space far from any limit (or none), is
    raised as it was; and the package's own errors are never read as memory."""
    from torch_tanhnet.training import loop, setup
    from torch_tanhnet.training.config import ConfigError

    monkeypatch.setattr(setup, "address_space_limit", lambda: limit)
    monkeypatch.setattr(setup, "mapped_peak", lambda: 2**28)
    monkeypatch.setattr(setup, "address_space_headroom", lambda: limit and 2**30)

    def fail(*a, **k):
        raise SystemError("a bug")

    monkeypatch.setattr(loop.Run, "train_step", fail)
    with pytest.raises(SystemError, match="a bug"):
        cli(capsys, "--logdir", tmp_path / "run", "--epochs", "3", *SMALL)
    monkeypatch.setattr(setup, "mapped_peak", lambda: limit or 2**28)  # at the limit, if any
    assert setup.out_of_memory(ConfigError("lr", "must be positive")) is None


def test_a_dry_run_of_a_resume_says_that_its_steps_were_kept(tmp_path, capsys):
    """--resume --dry-run trains the saved run 5 steps on and keeps them (a dry run with --logdir is a run, as the
    docs say), and said nothing of it (an error audit): it says so, with the step the checkpoint is at."""
    train(TrainConfig(epochs=20, logdir=str(tmp_path / "run"), progress=False, image_interval=10**6))
    code, out, err = cli(capsys, "--resume", "--dry-run", "--epochs", "40", "--logdir", str(tmp_path / "run"),
                         "--no-progress")
    assert code == 0, err
    assert f"dry run: its 5 steps were kept in {tmp_path / 'run'} (a dry run with --logdir is a run: its checkpoint " \
           "is at step 25 now)\n" in out
    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt")["global_step"] == 25


@pytest.mark.parametrize("where", ["a tensor", "the settings"])
def test_a_checkpoint_whose_bytes_changed_after_it_was_written_is_refused(tmp_path, where):
    """torch.load checks none of its zip's CRC-32s: one flipped bit in a tensor's bytes (a disk's, a copy's) resumed a
    run silently from another weight. A change anywhere in a part is refused, naming the part; the file is kept."""
    path = tmp_path / "checkpoint.pt"
    checkpoint.save_atomic({"model": {"U": torch.full((64,), 1.5)}, "config": {"dataset": "moons-moons-moons"}}, path)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x00\x00\xc0\x3f" * 8) + 9 if where == "a tensor" else data.find(b"moons-moons-moons") + 3
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load(path)
    assert str(info.value).startswith(f"checkpoint {str(path)!r} is damaged: its part ") and str(info.value).endswith(
        "no longer matches the checksum it was written with (the file changed on the disk or in a copy); it cannot be "
        "resumed")
    assert path.read_bytes() == bytes(data)


@pytest.mark.parametrize("script", ["train", "sweep"])
def test_a_dry_run_whose_temporary_folder_cannot_be_written_blames_no_logdir(tmp_path, monkeypatch, capsys, script):
    """`umask 777; train.py --dry-run` (as a user other than root): "argument --logdir: cannot create or write
    '/tmp/torch-tanhnet-dry-run-...' (Permission denied)", of a --logdir never given; sweep.py's said "cannot
    write" and left the folder, mode 000, behind. The flag that made the folder, the umask, the way out; nothing
    left in TMPDIR."""
    from torch_tanhnet.training import setup

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setattr(setup, "_umask", lambda: 0o777)

    def denied(*args, **kwargs):  # the write test in a folder of mode 000, as anyone but root meets it
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(setup.tempfile, "mkstemp", denied)
    if script == "train":
        code, out, err = cli(capsys, "--dry-run", *SMALL)
    else:
        from conftest import load_script

        monkeypatch.chdir(tmp_path)
        code = load_script("sweep").main(["--dry-run", "--seeds", "2", "--no-progress"])
        out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    line = err.strip()
    assert line.startswith(f"{script}.py: error: argument --dry-run: cannot create or write its temporary folder "
                           f"'{tmp_path}/"), line
    assert line.endswith("' (Permission denied; the umask 0777 makes every new folder so); give it a --logdir, or a "
                         "writable TMPDIR"), line
    assert list(tmp_path.iterdir()) == []


def test_too_many_open_files_names_the_limit_and_not_a_write(tmp_path, monkeypatch, capsys):
    """`ulimit -n 5`: a module imported late could not be opened, and train.py said "cannot save TensorBoard's
    events in '.../render.py': Too many open files" (sweep.py: "cannot write .../__init__.py"), a read called a
    write, the limit unnamed."""
    import errno
    import resource

    from torch_tanhnet.training import logger

    def fail(*a, **k):
        raise OSError(errno.EMFILE, "Too many open files", "/site-packages/torch_tanhnet/training/render.py")

    monkeypatch.setattr(logger.Logger, "pictures", fail)
    code, out, err = cli(capsys, "--logdir", tmp_path / "run", "--epochs", "3",
                         *[a for a in SMALL if a not in ("--image-interval", "1000000")])
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert code == 1 and one_error_line(err) == (
        "train.py: error: cannot open '/site-packages/torch_tanhnet/training/render.py': Too many open files: this "
        f"process may open at most {soft} files at once (ulimit -n {soft}); raise the limit (it had no checkpoint "
        "yet: nothing of it was kept)")


def test_a_checkpoint_that_cannot_be_opened_is_not_called_damaged(tmp_path, monkeypatch):
    """chmod 000 on checkpoint.pt (as another user than root): "is unreadable: not a file torch.save wrote, or cut
    short (PermissionError)", a good file called bad. The system's reason, and the file left alone."""
    path = tmp_path / "checkpoint.pt"
    checkpoint.save_atomic({"model": {"U": torch.ones(2)}}, path)

    def denied(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    # as chmod 000 does for anyone but root: the zip check cannot open it either, and torch.load says why
    monkeypatch.setattr(checkpoint.zipfile, "ZipFile", denied)
    monkeypatch.setattr(checkpoint.torch, "load", denied)
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load(path)
    assert str(info.value) == f"cannot read checkpoint {str(path)!r} (Permission denied); it was left as it is"


def test_a_resume_on_changed_data_is_refused_without_advice_on_data_it_will_not_train_on(tmp_path):
    """--resume with a --data file since changed to labels of one class warned "every label ... is 1" and then
    refused the changed data: advice on data the run would never train on."""
    import warnings

    from torch_tanhnet.training.config import ConfigError

    csv = tmp_path / "d.csv"
    csv.write_text("".join(f"{i / 30:.3f},{(i * 7 % 30) / 30:.3f},{i % 2}\n" for i in range(30)))
    train(TrainConfig(data=str(csv), epochs=2, logdir=str(tmp_path / "run"), progress=False))
    csv.write_text("".join(f"{i / 30:.3f},{(i * 7 % 30) / 30:.3f},1\n" for i in range(30)))
    with warnings.catch_warnings(record=True) as said, pytest.raises(ConfigError, match="the data differ from the "
                                                                                         "checkpoint's"):
        warnings.simplefilter("always")
        train(TrainConfig(data=str(csv), epochs=4, logdir=str(tmp_path / "run"), resume=True, progress=False))
    assert [str(w.message) for w in said] == []
