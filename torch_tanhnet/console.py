"""What the scripts say: a line for a person on stderr, written whole; and what is left to do once stdout's
reader has gone.

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


def stdout_gone() -> int:
    """Once stdout's reader has gone (``| head``): point stdout at os.devnull, so that later output and the
    interpreter's last flush go nowhere instead of failing again (Python's own advice for SIGPIPE); the exit
    code 141, as a shell reports a process that SIGPIPE ended."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141
