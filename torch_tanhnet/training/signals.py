"""Ctrl-C and SIGTERM as a request to stop: the loop saves a checkpoint and returns, the process exits 130."""

from __future__ import annotations

import signal
from contextlib import contextmanager


class StopFlag:
    """Set by a signal; read by the loop at its next check."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_) -> None:
        self.requested = True


@contextmanager
def stop_on_signals():
    """While inside, Ctrl-C (SIGINT) or SIGTERM sets the yielded flag instead of killing; the loop saves and returns.

    torchrun passes a Ctrl-C on to its workers as SIGTERM, hence both.
    """
    flag = StopFlag()
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, flag.set)
    except ValueError:  # not the main thread: leave the signals alone
        pass
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
