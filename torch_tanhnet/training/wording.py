"""How an error names a setting: as Python does (``lr``, ``resume=True``) or as the command line does
(``--lr``, ``--resume``).

An error's text writes ``setting("lr")`` where it names a setting of :class:`~.config.TrainConfig` (or of a sweep);
``str(error)`` gives Python's words, :meth:`Worded.for_command_line` the command line's, which
``scripts/train.py`` prints.

And how a printed command names a path or a script (:func:`shell`, :func:`script`), so that pasted into a shell
from the folder it was printed in, it does what it says.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
import unicodedata
from pathlib import Path

SWITCHES = {"resume": True, "dry_run": True, "standardize": True, "progress": False}  # as a user turns each one
FLAGS = {"progress": "--no-progress"}  # where the flag is not the setting's name
_OPEN = _CLOSE = "\0"  # NUL: no file name, command-line argument or repr() holds one
_NAME = re.compile(f"{_OPEN}([a-z_]+){_CLOSE}")


def setting(field: str) -> str:
    """The setting ``field`` (of :class:`~.config.TrainConfig`, or one registered) in an error's text, named as
    Python or the command line names it when the text is shown (:func:`words`). Marked with NUL characters, which no
    name a user can type holds, so that a name is shown as typed: a file named ``{lr}`` was once shown as ``--lr``."""
    if field not in fields():
        raise ValueError(f"{field!r} is not a setting of TrainConfig or a registered one")
    return f"{_OPEN}{field}{_CLOSE}"


_OTHERS: set[str] = set()  # settings of applications above this package (the sweep's), as they register them


def register(names) -> None:
    """Let errors name these settings too: an application built on the training package (the sweep:
    ``seeds``, ``random``, ``gallery``, ...) registers its own when its settings class is defined."""
    _OTHERS.update(names)


def fields() -> set[str]:
    """The settings an error may name: :class:`~.config.TrainConfig`'s and those registered (:func:`register`)."""
    from .config import TrainConfig  # here: config.py imports the modules that import this one

    return {*TrainConfig.__dataclass_fields__, *_OTHERS}


def flag(field: str) -> str:
    """``--learning-rate`` for ``learning_rate``; ``--no-progress`` for ``progress``."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def python_name(field: str) -> str:
    """``lr`` for a value, ``resume=True`` for a switch."""
    return f"{field}={SWITCHES[field]}" if field in SWITCHES else field


def words(text: str, command_line: bool) -> str:
    """``text`` with each :func:`setting` written as the command line or as Python names it."""

    def name(m: re.Match) -> str:
        return flag(m[1]) if command_line else python_name(m[1])

    return _NAME.sub(name, text)


class Worded(Exception):
    """An error whose text names settings with :func:`setting`: str() in Python's words, for_command_line() in
    the command line's."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(words(text, command_line=False))

    def for_command_line(self) -> str:
        return words(self.text, command_line=True)


def utf8(text: str) -> str:
    """``text`` as valid UTF-8: the bytes of a file name that are not UTF-8, which Python keeps as lone surrogates
    (``pts\\udce9.csv`` for the bytes ``pts\\xe9.csv``), written as ``\\xe9``. TensorBoard's writer and CSV
    readers refuse the surrogates."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` for a line of output, a folder name or a picture's label: each control character, line or
    paragraph separator, bidirectional control and invisible format character (:func:`_breaks`: a newline, a
    tab, a right-to-left override, a byte-order mark; a file name may hold any of them) as Python writes it in a
    string (``\\n``), and bytes that are not UTF-8 as :func:`utf8` writes them; every other character as it is
    (an ideographic space, a no-break space, an emoji's joiner). A newline in a label stopped the sweep's pictures
    (Pillow measures one line) and split its printed table."""
    return "".join(repr(c)[1:-1] if _breaks(c) else c for c in utf8(text))


# the bidirectional controls: a right-to-left override in a file name showed the rest of a printed line reversed
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# format characters that no script writes between its letters and that show nothing: a byte-order mark, the word
# joiner and invisible operators, the deprecated shaping controls, interlinear annotation marks, the language tag
# (the zero-width space and soft hyphen stay: Thai and Khmer write the one between words, and the Arabic number
# signs and the like are format characters that show)
INVISIBLE = frozenset("\ufeff\u2060\u2061\u2062\u2063\u2064\u206a\u206b\u206c\u206d\u206e\u206f\ufff9\ufffa\ufffb"
                      "\U000e0001")


def _breaks(c: str) -> bool:
    """Whether ``c`` is escaped: a control character, a line or paragraph separator, a bidirectional control, or
    one of the INVISIBLE format characters."""
    return c in BIDI or c in INVISIBLE or unicodedata.category(c) in ("Cc", "Zl", "Zp")


def shell(path) -> str:
    """A path as a printed command writes it: quoted where a shell would split it (``'runs/with space'``), and
    ``./`` before one that starts with ``-``, which a program would take for an option (quoting does not help).
    A name whose bytes are not UTF-8, or that holds a control character or a line or paragraph separator (a
    newline, as :func:`printable` escapes), is written in bash's ``$'pts\\xe9.csv'``, which gives those bytes
    back on one line."""
    text = str(path)
    text = "./" + text if text.startswith("-") else text
    if utf8(text) != text or any(map(_breaks, text)):
        raw = text.encode("utf-8", "surrogateescape")
        return "$'" + "".join(chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\x{b:02x}" for b in raw) + "'"
    return shlex.quote(text)


def entry(path: Path) -> str:
    """What is at ``path``, as a message names what stands where a file or folder was expected: ``a folder``,
    ``a FIFO``, ``a socket``, ``a device``, ``a file``, ``a symbolic link to 'x', which does not exist``,
    ``nothing``."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        try:
            target = os.readlink(path)  # as the name itself: the scripts print a non-UTF-8 byte as \xe9
        except OSError:
            return "nothing"
        if e.errno == errno.ELOOP:  # a link to itself, or links in a ring: no folder can be made there
            return f"a symbolic link to {target!r} that leads back to itself"
        return f"a symbolic link to {target!r}, which does not exist"
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")]
    return next((name for test, name in kinds if test(mode)), "not a file")


def script(file: str, name: str) -> str:
    """The script ``name`` beside ``file`` (a script's ``__file__``) as a command typed in the working folder names
    it: relative below it (``scripts/train.py`` from the project's root), absolute elsewhere; quoted."""
    path = Path(file).resolve().with_name(name)
    try:
        path = path.relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return shell(path)


def project_script(name: str) -> str:
    """``scripts/<name>`` of this checkout as the working folder reaches it (:func:`script`), for the library's own
    messages; ``scripts/<name>`` where the package was installed without its scripts."""
    path = Path(__file__).resolve().parents[2] / "scripts" / name
    return script(str(path), name) if path.is_file() else f"scripts/{name}"
