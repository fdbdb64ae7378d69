"""Something other than what was expected where a folder or a file should be: a file, a FIFO, a symbolic link to
nothing, a folder. Each is one line naming what stands there, exit 2, and nothing made or changed. A link to nothing
as --logdir read "(File exists)", a file above it "(Not a directory)", the default folder's parent as a link to
nothing "('runs' is a file)"; a FIFO or a folder at checkpoint.pt "already holds a run ... --resume", and --resume
then "no checkpoint". No FIFO here is ever opened: that would hang the test, as it would the user's command."""

import os

import pytest
from conftest import load_script

WHAT = {"file": "a file", "fifo": "a FIFO", "dangling": "a symbolic link to 'nowhere', which does not exist",
        "folder": "a folder", "loop": "a symbolic link to 'loop' that leads back to itself"}


def make(path, kind):
    if kind == "file":
        path.write_text("mine")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling":
        path.symlink_to("nowhere")
    elif kind == "loop":  # a link to itself: mkdir said "File exists", and nothing can ever be made there
        path.symlink_to("loop")
    else:
        path.mkdir()
        (path / "mine.txt").write_text("mine")


def tree(folder):
    return sorted((str(p.relative_to(folder)), p.is_symlink() or p.is_dir() or p.read_bytes())
                  for p in folder.rglob("*") if not p.is_fifo())


def one_line(script, capsys, *argv):
    try:
        code = load_script(script).main([*argv, "--epochs", "2", "--no-progress"])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"{script}.py: error: "), err
    return err.rstrip("\n")


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("script", ["train", "sweep"])
@pytest.mark.parametrize("kind", ["file", "fifo", "dangling", "loop"])
def test_where_the_logdir_or_a_folder_above_it_should_be(here, capsys, script, kind):
    name = "loop" if kind == "loop" else "x"
    make(here / name, kind)
    before = tree(here)
    line = one_line(script, capsys, "--logdir", name)
    if kind == "dangling":
        assert line.endswith(f"'x' is {WHAT[kind]}; create that folder or choose another --logdir")
    elif kind == "loop":
        assert line.endswith(f"'loop' is {WHAT[kind]}; choose another --logdir")
    else:
        assert line.endswith(f"'x' is {WHAT[kind]}, not a folder")
    line = one_line(script, capsys, "--logdir", f"{name}/deep/run")
    assert line.endswith(f"cannot create '{name}/deep/run' ('{name}' is {WHAT[kind]})")
    assert tree(here) == before


@pytest.mark.parametrize("script", ["train", "sweep"])
@pytest.mark.parametrize("flag", ["--logdir", "--data"])
def test_an_empty_name_is_refused(here, capsys, script, flag):
    """--logdir '' (a shell variable never set) trained into the default folder, silently."""
    line = one_line(script, capsys, flag, "")
    assert line.startswith(f"{script}.py: error: argument {flag}: got '', which names no ")
    assert list(here.iterdir()) == []


@pytest.mark.parametrize("script,parent", [("train", "runs"), ("sweep", "sweeps")])
@pytest.mark.parametrize("kind", ["file", "fifo", "dangling"])
def test_where_the_default_folders_parent_should_be(here, capsys, script, parent, kind):
    make(here / parent, kind)
    before = tree(here)
    line = one_line(script, capsys)
    assert line.startswith(f"{script}.py: error: argument --logdir: cannot create '{parent}/")
    assert line.endswith(f" ('{parent}' is {WHAT[kind]})")
    assert tree(here) == before


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_new_sweep_is_not_sent_to_resume_what_is_no_checkpoint(here, capsys, kind):
    """A FIFO or a folder at checkpoint.pt: a new sweep said "already holds a sweep: continue it with --resume", and
    --resume then "no sweep checkpoint": a circle."""
    (here / "sweep").mkdir()
    make(here / "sweep" / "checkpoint.pt", kind)
    assert one_line("sweep", capsys, "--logdir", "sweep").endswith(
        "argument --logdir: 'sweep' is not empty (checkpoint.pt); a sweep writes only into a new or empty folder, "
        "so that nothing there is overwritten: choose another --logdir")


def test_a_link_to_a_file_as_the_logdir_is_a_file_not_a_folder(here, capsys):
    (here / "points.csv").write_text("1,2,0\n")
    (here / "to-file").symlink_to("points.csv")
    for script in ("train", "sweep"):
        assert one_line(script, capsys, "--logdir", "to-file").endswith("'to-file' is a file, not a folder")


@pytest.mark.parametrize("kind", ["fifo", "dangling", "folder"])
def test_where_a_checkpoint_should_be(here, capsys, kind):
    for folder in ("run", "sweep"):
        (here / folder).mkdir()
        make(here / folder / "checkpoint.pt", kind)
    before = tree(here)
    line = one_line("train", capsys, "--logdir", "run")  # a new run: the folder is not empty, not a run's
    assert line.endswith("argument --logdir: 'run' is not empty (checkpoint.pt); a new run writes only into a new "
                         "or empty folder, so that nothing there is overwritten: choose another --logdir")
    line = one_line("train", capsys, "--logdir", "run", "--resume")
    assert line == f"train.py: error: no checkpoint at 'run/checkpoint.pt': {WHAT[kind]} stands there, not a file"
    line = one_line("sweep", capsys, "--logdir", "sweep", "--resume")
    assert line == f"sweep.py: error: no sweep checkpoint in 'sweep': {WHAT[kind]} stands at checkpoint.pt, not a file"
    assert tree(here) == before


@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling", "loop"])
def test_where_a_data_file_should_be(here, capsys, kind):
    name = "loop" if kind == "loop" else "points.csv"
    make(here / name, kind)
    before = tree(here)
    if kind in ("dangling", "loop"):
        expected = f"data file {name!r} does not exist ({WHAT[kind]})"
    else:
        expected = f"data file {name!r} is not a regular file ({WHAT[kind]})"
    assert one_line("train", capsys, "--data", name) == f"train.py: error: {expected}"
    assert one_line("sweep", capsys, "--data", name).endswith(expected)
    assert tree(here) == before


@pytest.mark.parametrize("junk", [b"", b"not a checkpoint at all\n"], ids=["empty", "garbage"])
def test_a_checkpoint_no_run_wrote_is_named_so(here, capsys, junk):
    """A new sweep called an empty or garbage checkpoint.pt "a train.py run"; --resume said "is unreadable
    (KeyError)" or "(EOFError)", a bare exception name."""
    for folder in ("run", "sweep"):
        (here / folder).mkdir()
        (here / folder / "checkpoint.pt").write_bytes(junk)
    before = tree(here)
    assert one_line("sweep", capsys, "--logdir", "sweep").endswith(
        "'sweep' holds a checkpoint.pt that no run or sweep wrote (unreadable); a new sweep needs a new or empty "
        "--logdir")
    for script, folder in (("train", "run"), ("sweep", "sweep")):
        line = one_line(script, capsys, "--logdir", folder, "--resume")
        assert f"checkpoint '{folder}/checkpoint.pt' is unreadable: not a file torch.save wrote, or cut short (" in line
        assert line.endswith("); it cannot be resumed")
    assert tree(here) == before
