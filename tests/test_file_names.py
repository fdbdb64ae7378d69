"""File names whose bytes are not UTF-8 (Python keeps them as lone surrogates): TensorBoard's writer refused them in
a run's HParams and its default folder's name, a sweep's results.csv was left with its header alone (written in
place, and failing on the name), and a printed command named another file. And any name a printed command holds
gives its own bytes back in a shell."""

import csv
import os
import re
import subprocess
import tempfile

import pytest
from conftest import load_script

from torch_tanhnet.training import wording
from torch_tanhnet.training.wording import shell

NAME = os.fsdecode(b"pts\xe9.csv")  # as Python reads it from the command line


@pytest.fixture
def points(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(os.fsencode(NAME), "w") as f:
        f.writelines(f"{(i % 7) / 3 - 1:.3f},{(i % 5) / 2 - 1:.3f},{int((i % 7) / 3 - 1 > (i % 5) / 2 - 1)}\n"
                     for i in range(60))
    return tmp_path


@pytest.mark.parametrize("name", ["plain", "with space", "-dash", "it's", NAME, os.fsdecode(b"\xff'\\x"), "we\nird",
                                  "tab\tand\x1bescape"])
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


def test_a_sweep_over_files_one_named_with_a_newline_finishes_its_pictures_and_lines(points, capsys):
    """Two --data files, one named 'we\\nird.csv': the heat map's label stopped the sweep after training (Pillow
    measures one line), every --resume again; the summary table and the printed command split over two lines."""
    (points / "we\nird.csv").write_bytes(open(os.fsencode(NAME), "rb").read())
    (points / "base.csv").write_bytes(open(os.fsencode(NAME), "rb").read())
    assert load_script("sweep").main(["--data", "we\nird.csv", "base.csv", "--seeds", "2", "--epochs", "2",
                                      "--logdir", "sw", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (points / "sw" / "pictures" / "solved.png").is_file()
    assert len(list((points / "sw" / "pictures").glob("gallery-*.png"))) == 2
    assert re.search(r"^we\\nird\.csv +2 ", out, re.M), out  # the table's row, on one line
    assert "--data $'we\\x0aird.csv' --epochs 2 --seed 0" in out  # run 0 alone, on one line
    assert load_script("train").main(["--data", "we\nird.csv", "--epochs", "2", "--no-progress"]) == 0
    assert [p.name.split("-", 2)[2] for p in (points / "runs").iterdir()] == ["we\\nird-e2"]


@pytest.mark.parametrize("script", ["train", "sweep"])
def test_a_folder_named_in_bytes_that_are_not_utf8_is_one_line(script, tmp_path, monkeypatch, capsys):
    """TensorBoard's writer encodes a folder's name as UTF-8: such a --logdir (or a dry run's folder under such a
    TMPDIR) was a traceback once the run had begun; a sweep, which writes its events otherwise, took it and printed
    `tensorboard --logdir $'sw\\xe9'`, which showed no run (TensorBoard's reader fails on the name as well)."""
    monkeypatch.chdir(tmp_path)
    main, prog = load_script(script).main, f"{script}.py: error: argument --logdir: "
    why = "its name is not UTF-8 text, and TensorBoard writes and reads its events only in a folder whose name is"
    folder = os.fsdecode(b"bad\xe9name")
    assert main(["--logdir", folder, "--epochs", "2", "--no-progress"]) == 2
    assert capsys.readouterr().err == f"{prog}'bad\\xe9name': {why}; choose another --logdir\n"
    assert list(tmp_path.iterdir()) == []
    assert main(["--logdir", folder, "--resume", "--no-progress"]) == 2  # no such folder: nothing to rename
    assert capsys.readouterr().err == f"{prog}'bad\\xe9name': {why}; choose another --logdir\n"
    os.mkdir(folder)  # a folder of an older version's making, or renamed
    assert main(["--logdir", folder, "--resume", "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"{prog}'bad\\xe9name': {why}; rename the folder to a UTF-8 name and "
                                       "--resume there\n")
    monkeypatch.setenv("TMPDIR", str(tmp_path / folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    assert main(["--dry-run", "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}'{tmp_path}/bad\\xe9name/") and err.endswith(
        f"' (a dry run's temporary folder: TMPDIR): {why}; give a --logdir or another TMPDIR\n"), err
    assert list((tmp_path / folder).iterdir()) == []  # the dry run's temporary folder removed


@pytest.mark.parametrize("script", ["train", "sweep"])
def test_a_utf8_folder_read_under_an_ascii_locale_blames_the_locale(script, tmp_path, monkeypatch, capsys):
    """`LC_ALL=C PYTHONUTF8=0 PYTHONCOERCECLOCALE=0`: Python reads the UTF-8 name 'runé' (bytes c3 a9) as ASCII, the
    bytes as lone surrogates, which TensorBoard's writer refuses; the refusal said "its name is not UTF-8 text ...
    rename the folder", which would not help. It names the locale and the way out. (Python's reading of names is
    set at its start: here the name is given as that Python decodes it.)"""
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    folder = "run\udcc3\udca9"  # os.fsdecode(b"run\xc3\xa9") under an ASCII locale
    assert load_script(script).main(["--logdir", folder, "--epochs", "2", "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"{script}.py: error: argument --logdir: 'runé': this Python reads file names as ascii (its locale), not as "
        "UTF-8, and TensorBoard writes its events only in a folder whose name it reads as UTF-8 text; run it with "
        "PYTHONUTF8=1 or a UTF-8 locale (LC_ALL=C.UTF-8)\n")
    assert list(tmp_path.iterdir()) == []


# A name holding a setting's name in braces is shown as typed: the messages once wrote settings as "{lr}" and named
# them after the name was put in, so that a file named "{lr}" read "'--lr' is a file" (and "'lr' is a file" from Python)

BRACED = "{lr}{resume}{logdir}{data}"
ODD = "\ue000lr\ue001\n{lr}"  # the marker's characters once (private-use), a newline: shown as Python writes it


def braced_cases(name):
    """(arguments of train.py or sweep.py, what stands at ``name``) for each kind of message that names a user's
    path."""
    return [
        ("train", ["--logdir", name], "file"),                      # a file where the run's folder goes
        ("train", ["--logdir", name], "folder holding a file"),     # not empty
        ("train", ["--logdir", name, "--resume"], "empty folder"),  # no checkpoint to resume
        ("train", ["--data", name], "nothing"),                     # no such data file
        ("train", ["--data", name], "bad line"),                    # a data file's line
        ("sweep", ["--logdir", name, "--seeds", "2"], "folder holding a file"),
        ("sweep", ["--logdir", name, "--resume"], "empty folder"),
        ("sweep", ["--data", name, "--seeds", "2"], "bad line"),
    ]


@pytest.mark.parametrize("name", [BRACED, ODD])
@pytest.mark.parametrize("case", range(8))
def test_a_name_holding_a_settings_name_in_braces_is_shown_as_typed(tmp_path, monkeypatch, capsys, case, name):
    monkeypatch.chdir(tmp_path)
    script, args, what = braced_cases(name)[case]
    place = tmp_path / name
    if what == "file":
        place.write_text("x\n")
    elif what == "folder holding a file":
        place.mkdir()
        (place / "notes.txt").write_text("x\n")
    elif what == "empty folder":
        place.mkdir()
    elif what == "bad line":
        place.write_text("0.1,0.2,1\n0.3,0.4\n")
    assert load_script(script).main([*args, "--epochs", "2", "--no-progress"]) in (1, 2)
    err = capsys.readouterr().err
    shown = name if name.isprintable() else repr(name)[1:-1]
    assert err.count("\n") == 1 and shown in err, err


def test_from_python_a_name_holding_a_settings_name_in_braces_is_shown_as_typed(tmp_path):
    from torch_tanhnet.training import TrainConfig, train

    (tmp_path / BRACED).write_text("x\n")
    with pytest.raises(ValueError) as e:
        train(TrainConfig(logdir=str(tmp_path / BRACED), epochs=2, progress=False))
    assert f"{BRACED}' is a file, not a folder" in str(e.value)
    with pytest.raises(ValueError) as e:
        train(TrainConfig(data=str(tmp_path / BRACED), epochs=2, progress=False))
    assert BRACED in str(e.value)


def test_messages_name_settings_with_setting_not_braces():
    """The old form, "{lr}" in a message's text, would now be shown as written: no string of the package holds one
    (outside docstrings), so each message names its settings with wording.setting."""
    import ast
    from pathlib import Path

    import torch_tanhnet
    from torch_tanhnet.training.config import TrainConfig

    fields = "|".join(TrainConfig.__dataclass_fields__)
    braced = re.compile(rf"\{{({fields})\}}")
    found = []
    for path in Path(torch_tanhnet.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.name}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
                  and braced.search(n.value)]
        # and every setting("…") names one: setting() raises on a typo, which would replace the error it was in
        found += [f"{path.name}:{n.lineno}: setting({n.args[0].value!r})" for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setting"
                  and not (n.args and isinstance(n.args[0], ast.Constant)
                           and n.args[0].value in wording.fields())]
    assert found == []


@pytest.mark.parametrize("name, shown", [
    ("データ\u3000セット.csv", "データ\u3000セット.csv"), ("my\xa0pts.csv", "my\xa0pts.csv"),  # spaces: kept
    ("\U0001f468\u200d\U0001f469.csv", "\U0001f468\u200d\U0001f469.csv"),  # an emoji's joiner: kept
    ("we\nird.csv", "we\\nird.csv"), ("a\u2028b", "a\\u2028b"), ("t\tx\x1b", "t\\tx\\x1b"),  # line breaks, controls
    ("rtl\u202eVSC.csv", "rtl\\u202eVSC.csv"), ("a\u2066b\u2069", "a\\u2066b\\u2069"),  # bidi: reversed the line
    ("\ufeffa.csv", "\\ufeffa.csv"), ("a\u2060b", "a\\u2060b"),  # invisible, in no script's words
    ("\u0e20\u0e32\u0e29\u0e32\u200b\u0e44\u0e17\u0e22",) * 2,  # Thai's word space: kept
    ("\u0600\u0661\u0662.csv", "\u0600\u0661\u0662.csv"), ("so\xadft", "so\xadft"),  # an Arabic sign: it shows
    ("\U0001f3f4\U000e0067\U000e0062\U000e007f", "\U0001f3f4\U000e0067\U000e0062\U000e007f"),  # a flag's tags: kept
])
def test_only_control_characters_and_line_breaks_are_escaped_in_labels(name, shown):
    """str.isprintable() is False for every space but ' ' and for format characters: a Japanese file name's
    ideographic space was shown as \\u3000, and its sweep's folders changed name."""
    from torch_tanhnet.sweep.space import folder_names

    assert wording.printable(name) == shown
    assert (shell(name).startswith("$'")) == (name != shown)
    if name == shown:  # the folder a sweep gives it is what it was before labels were escaped
        assert folder_names([f"data={wording.printable(name)}"]) == folder_names([f"data={name}"])


def test_the_scripts_lines_name_a_folder_holding_a_newline_on_one_line(points, capsys):
    """--logdir $'s\\nw': the plan's, the results' and a finished sweep's lines split in two (re-probe); train.py's
    'already at epoch' and 'interrupted ... checkpoint saved in' lines as well."""
    sweep = load_script("sweep")
    argv = ["--data", NAME, "--seeds", "1", "--epochs", "2", "--gallery", "0", "--logdir", "s\nw", "--no-progress"]
    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
    assert "logs: s\\nw\n" in out and "results: s\\nw/results.csv, pictures: s\\nw/pictures\n" in out, out
    assert sweep.main(["--logdir", "s\nw", "--resume", "--no-progress"]) == 0
    assert "the sweep in s\\nw is complete" in capsys.readouterr().out
    train = load_script("train")
    for again in ([], ["--resume"]):
        assert train.main(["--data", NAME, "--epochs", "2", "--logdir", "t\nr", "--no-progress", *again]) == 0
    assert "the run in t\\nr is already at epoch 2" in capsys.readouterr().out
