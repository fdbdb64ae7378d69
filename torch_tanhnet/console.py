"""What the scripts say: a line for a person on stderr, written whole; and output that outlives its reader.

``print(line, file=sys.stderr)`` writes twice, the text and then its newline. Where Python's stderr is unbuffered
(``PYTHONUNBUFFERED=1`` or ``python -u``, which containers and job schedulers often set) each write reaches the
stream at once, and under torchrun the processes share one stream: two processes' errors once came out as
``train.py: error: …train.py: error: …`` and then two newlines. One write per line keeps each whole (Linux never
interleaves writes to a pipe of up to 4096 bytes).
"""

from __future__ import annotations

import os
import sys


def say(line: str) -> None:
    """Write ``line`` and its newline to stderr in one write, and flush it."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Output:
    """A script's stdout that outlives its reader.

    Once the reader has gone (``script.py ... | head -1``), a write raises BrokenPipeError wherever the script
    happened to print: after a sweep's plan, before it trained a run; between a benchmark's table and its --json
    file. Here the first such error points stdout at os.devnull instead, so the work goes on and keeps what it
    saves, and what is still said goes nowhere; :meth:`exit_code` then gives 141, as a shell reports a process
    that SIGPIPE ended (Python's own advice for SIGPIPE, made to wait for the work's end).
    """

    def __init__(self, stream):
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def exit_code(self, code: int) -> int:
        """``code``, the script's own, once what it said is written; 141 in place of 0 if the reader went away."""
        self.flush()
        return 141 if self.gone and code == 0 else code

    def _to_devnull(self) -> None:
        self.gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # the interpreter's last flush, too, goes there and not to the pipe
        os.close(devnull)
        self._stream.flush()  # what the failed write left in the buffer

    def __getattr__(self, name):  # fileno, isatty, encoding, ...: the stream's own
        return getattr(self._stream, name)
