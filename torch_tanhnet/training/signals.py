"""Ctrl-C, SIGTERM, SIGHUP and SIGXCPU as a request to stop: the loop saves a checkpoint and returns, exit 130.

- :func:`stop_on_signals`: while inside, any of them only sets a flag, however many come;
  :func:`~torch_tanhnet.training.loop.train` runs its loop, its final save and its clean-up inside.
- :func:`interrupt`: a script's handler outside the loop: an immediate KeyboardInterrupt before
  it, remembered in case Python drops it; nothing after it.
- :func:`deferred_signals`: while inside, any of them waits and is delivered on leaving, to
  whatever handled it before; :func:`~torch_tanhnet.training.checkpoint.save_atomic` writes inside,
  so that no signal cuts a save in two, whoever calls it.

Both change the handlers of the main thread only; elsewhere (where Python allows no handler) they
leave the signals alone.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Callable

# torchrun passes a Ctrl-C on to its workers as SIGTERM; SIGHUP is a closed terminal or a dropped ssh session (it
# killed a run without a save, and before its first checkpoint left a folder neither a new run nor --resume took);
# SIGXCPU is a CPU-time limit's soft part reached (ulimit -S -t, a batch system's): it killed a run silently, its
# work since the last checkpoint lost (the hard part, if any, is a SIGKILL a second of CPU time later at the least)
SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGXCPU")
SIGNALS = tuple(getattr(signal, name) for name in SIGNAL_NAMES if hasattr(signal, name))


class StopRequested(Exception):
    """A stop asked for by a signal, raised by :meth:`StopFlag.raise_if_requested` out of work that takes long
    between two checks of the loop (a large sweep group's data being drawn); its caller saves and stops."""


class StopFlag:
    """Set by a signal; read by the loop at its next check."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_) -> None:
        self.requested = True

    def raise_if_requested(self) -> None:
        if self.requested:
            raise StopRequested


received = StopFlag()  # set by interrupt(): a signal that came before a loop took the signals over
late = StopFlag()  # set by interrupt(): a signal absorbed after a loop ended (a torchrun sweep's rank at its gather)
_loop_over = False  # whether a loop under stop_on_signals has ended in this process


def interrupt(sig, frame) -> None:
    """A script's handler outside the loop. Before it: stop at once (KeyboardInterrupt), and remember it in
    ``received``, since Python drops an exception raised while it runs certain callbacks (a weakref's,
    during an import); :func:`check_received` then stops at the next safe point. Once a stop is under
    way, or after a loop has ended (its checkpoint saved), absorb: the process is about to exit.
    """
    if _loop_over or received.requested:
        late.set()
        return
    received.set()
    raise KeyboardInterrupt


def check_received() -> None:
    """Raise KeyboardInterrupt if :func:`interrupt` took a signal whose exception Python dropped."""
    if received.requested:
        raise KeyboardInterrupt


def _install(handler: Callable) -> dict:
    """Put ``handler`` on :data:`SIGNALS`; the handlers it replaced (none outside the main thread).

    A signal ignored when the process began stays ignored, as Unix programs keep it: ``nohup`` ignores SIGHUP so
    that a run outlives its terminal, and a shell starts a background job (``train.py &``) with SIGINT ignored so
    that a Ctrl-C meant for the foreground does not reach it (the loop once took them over)."""
    previous = {}
    try:
        for sig in SIGNALS:
            old = signal.getsignal(sig)
            if old is None or old == signal.SIG_IGN:  # installed outside Python (it could not be put back), or
                continue  # ignored by whoever started the process: leave it
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave the signals alone
        pass
    return previous


def _restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@contextmanager
def stop_on_signals():
    """While inside, Ctrl-C (SIGINT), SIGTERM or SIGHUP sets the yielded flag instead of killing; the loop saves and
    returns.

    Every further signal is absorbed the same way until the block ends: a second Ctrl-C during
    the final save cannot cut it short.
    """
    global _loop_over
    _loop_over, late.requested = False, False  # of this loop: an earlier one's absorbed signal says nothing of it
    flag = StopFlag()
    flag.requested = received.requested
    previous = _install(flag.set)
    try:
        yield flag
    finally:
        _loop_over = True
        _restore(previous)


@contextmanager
def deferred_signals():
    """While inside, SIGINT, SIGTERM and SIGHUP wait; on leaving, each one that came is handed to the handler it
    would have met (a flag of :func:`stop_on_signals`, Python's KeyboardInterrupt, or the default action)."""
    came: list[int] = []
    previous = _install(lambda sig, frame: came.append(sig))
    try:
        yield
    finally:
        _restore(previous)
        for sig in dict.fromkeys(came):  # each signal once, in the order they came
            handler = previous[sig]
            if callable(handler):
                handler(sig, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(sig)
