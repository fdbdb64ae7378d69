"""What the scripts say: a line for a person on stderr, written whole; and output that outlives its reader.

``print(line, file=sys.stderr)`` writes twice, the text and then its newline. Where Python's stderr is unbuffered
(``PYTHONUNBUFFERED=1`` or ``python -u``, which containers and job schedulers often set) each write reaches the
stream at once, and under torchrun the processes share one stream: two processes' errors once came out as
``train.py: error: …train.py: error: …`` and then two newlines. One write per line keeps each whole (Linux never
interleaves writes to a pipe of up to 4096 bytes).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Callable

from .checks import one_line

# a file name's bytes that are not UTF-8, which Python keeps as the lone surrogates U+DC80..U+DCFF: as \xe9, the
# way training.wording.utf8 writes them and a pasted $'...' gives them back (an encoder writes "\udce9")
_RAW_BYTES = {0xDC00 + b: f"\\x{b:02x}" for b in range(0x80, 0x100)}
# the same bytes in a name that a message wrote with repr(), which escapes the surrogate as the text \udce9
_REPR_BYTES = re.compile(r"\\udc([89a-f][0-9a-f])")


def readable(text: str) -> str:
    """``text`` with the bytes of a non-UTF-8 file name in it written as ``\\xe9``, whether as the name itself or
    as its repr() (``'d\\udce9.csv'``, the messages' quoted names)."""
    return _REPR_BYTES.sub(r"\\x\1", text.translate(_RAW_BYTES))


def file_name(path) -> str:
    """A file's name as a one-line message shows it unquoted (``pts.csv``); one that would not print as one plain
    line (a newline, a byte that is not UTF-8, a character with no glyph) quoted as Python writes it."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def figure(value: float, places: int) -> str:
    """``value`` with ``places`` decimals, as a table prints a loss; past a million in size, in exponent form with as
    many significant digits (a loss of 1e30 printed 31 digits, and a sweep's table rows 200 characters wide)."""
    return f"{value:.{places}f}" if not abs(value) >= 1e6 else f"{value:.{places}e}"


def through_reference() -> str:
    """The end of the scripts' timing line when they trained through the handout's own lines (the reference
    Functions, TORCH_TANHNET_REFERENCE), else nothing."""
    from .kernels.dispatch import reference_asked

    return ", through the handout's own lines (TORCH_TANHNET_REFERENCE)" if reference_asked() else ""


def counted(n: int, word: str) -> str:
    """``3 runs``, ``1 run``."""
    return f"{n} {word}{'s' * (n != 1)}"


def say(line: str) -> None:
    """Write ``line`` and its newline to stderr in one write, and flush it. A stderr closed (``2>&-``) or that
    cannot be written loses the line, as Python's own warnings are then lost; the script's exit code still says."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(readable(line) + "\n")
        sys.stderr.flush()
    except OSError:
        pass


class Parser(argparse.ArgumentParser):
    """argparse's parser for the scripts: an error is one line, ``prog: error: message``, not the usage block and
    the error (``--epochs 1e3`` printed 8 lines in train.py; ``--help`` still shows the usage); and a flag is taken
    only as written, never abbreviated (``sweep.py --seed 3`` was read as ``--seeds 3``: three seeds, 0 to 2)."""

    def __init__(self, one_value: str = "", **kwargs) -> None:
        super().__init__(allow_abbrev=False, **kwargs)
        self.one_value = one_value  # said when a flag was given more values than it takes (train.py: sweep.py's)

    def parse_known_args(self, args=None, namespace=None):
        self._refuse_repeats(sys.argv[1:] if args is None else list(args))
        return super().parse_known_args(args, namespace)

    def _refuse_repeats(self, argv: list[str]) -> None:
        """A flag that takes values given twice: argparse kept the last silently (``sweep.py --lr 0.1 --lr 0.5``
        swept one rate, ``train.py --logdir a --logdir b`` wrote to b). A switch (``--dry-run``) twice is the same."""
        seen: dict[argparse.Action, str] = {}
        for token in argv:
            if token == "--":  # what follows is values
                break
            action = self._option_string_actions.get(token.split("=", 1)[0]) if token.startswith("-") else None
            if action is None or action.nargs == 0:
                continue
            flag = token.split("=", 1)[0]
            if action in seen:
                both = f" ({seen[action]} and {flag})" if seen[action] != flag else ""  # two spellings of it
                self.error(f"argument {'/'.join(action.option_strings)}: given twice{both}, and only the last would "
                           "count; " + (f"give all its values after one {flag} ({flag} A B ...)"
                                        if action.nargs in ("+", "*") else "give it once"))
            seen[action] = flag

    def error(self, message: str):
        hint = ""
        if message.startswith("unrecognized arguments: "):
            extra = message.removeprefix("unrecognized arguments: ").split()
            hint = (f" (each flag takes one value{self.one_value})" if extra and not extra[0].startswith("-")
                    else f" ({self.prog} --help lists its flags)")
        say(f"{self.prog}: error: {message}{hint}")
        raise SystemExit(2)


def warnings_as_lines(prog: str) -> None:
    """Python's warnings as the scripts' own lines, ``prog: warning: ...``, instead of the two lines naming the
    package's file and source line that a person running a script has no use for. A warning that names settings
    (``for_command_line``, as the package's errors do) names them as the command line does (``--standardize``)."""

    def line(message, *_, **__) -> str:
        text = message.for_command_line() if hasattr(message, "for_command_line") else str(message)
        return readable(f"{prog}: warning: {one_line(text)}\n")  # tqdm's of a thread that failed spans two

    warnings.formatwarning = line


class Output:
    """A script's stdout that outlives its reader, or its disk.

    Once the reader has gone (``script.py ... | head -1``), a write raises BrokenPipeError wherever the script
    happened to print: after a sweep's plan, before it trained a run; between a benchmark's table and its --json
    file. A stdout sent to a file on a full disk raises OSError the same way. Here the first such error points
    stdout at os.devnull instead, so the work goes on and keeps what it saves, and what is still said goes
    nowhere. :meth:`run` then ends the script as a cut pipe ends a process, 141 (Python's own advice for
    SIGPIPE, made to wait for the work's end), or, for any other error, says on stderr what was lost.
    """

    def __init__(self, stream, prog: str):
        if stream is None:  # stdout closed (>&-): Python leaves sys.stdout None, and what is said goes nowhere
            stream = open(os.devnull, "w")
        elif hasattr(stream, "reconfigure"):  # an encoding without ε, ≥ or × (PYTHONIOENCODING=ascii) gets \u03b5
            stream.reconfigure(errors="backslashreplace")  # as stderr does, not a UnicodeEncodeError mid-work
        self._stream = stream
        self._prog = prog
        self.lost: OSError | None = None  # the error that cut stdout off

    def write(self, text: str) -> int:
        try:
            return self._stream.write(readable(text))
        except OSError as e:
            self._to_devnull(e)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            self._to_devnull(e)

    def run(self, main: Callable[[], int], torchrun: bool = False) -> int:
        """``main()``'s exit code (argparse's too: ``--help``, a malformed command line) once what it said is
        written; if stdout was cut off, in place of 0: 141 for a reader gone (0 under ``torchrun``, which reports
        a process that exits otherwise as failed, with a traceback, when its work succeeded), and for any other
        error a line on stderr and 1."""
        try:
            code = main()
        except SystemExit as e:  # argparse's own exit, after --help or its usage
            if not isinstance(e.code, (int, type(None))):
                raise
            code = e.code or 0
        except Warning as w:  # -W error or PYTHONWARNINGS=error raised one (ours or torch's): one line, not a traceback
            text = w.for_command_line() if hasattr(w, "for_command_line") else str(w)
            say(f"{self._prog}: error: {text} (a warning, raised as an error by -W error or PYTHONWARNINGS)")
            code = 1
        self.flush()
        if self.lost is None:
            return code
        if isinstance(self.lost, BrokenPipeError):
            return code or (0 if torchrun else 141)
        say(f"{self._prog}: error: cannot write to stdout ({self.lost.strerror or self.lost}); what was to be "
            f"printed from then on is lost, the work itself went on")
        return code or 1

    def _to_devnull(self, error: OSError) -> None:
        self.lost = self.lost or error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # the interpreter's last flush, too, goes there
        os.close(devnull)
        self._stream.flush()  # what the failed write left in the buffer

    def __getattr__(self, name):  # fileno, isatty, encoding, ...: the stream's own
        return getattr(self._stream, name)
