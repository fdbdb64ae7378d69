"""One writer per log folder.

A run or a sweep holds an advisory lock (``flock``) on its folder while it writes there, so that a ``--resume``
started while it still runs is refused in one line instead of writing beside it: two processes saved one
checkpoint.pt in turn (its step went back and forth) and logged every step to TensorBoard twice. The lock goes
with the process: a run killed with SIGKILL holds nothing, and the next ``--resume`` goes on.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .config import ConfigError
from .wording import Worded, setting, words

try:
    import fcntl
except ImportError:  # not a POSIX system (Windows): no lock, as on a file system without flock
    fcntl = None

_held: dict[str, int] = {}  # folder -> the open descriptor that holds its lock (this process's own)


def hold(folder: Path) -> None:
    """Lock ``folder`` for this process, or raise ConfigError if another process holds it (a run or a sweep: the
    lock does not say which). This process may hold it already. Where the file system has no flock (some network
    file systems), nothing is held and the run goes on, as before."""
    key = _key(folder)
    if key in _held or fcntl is None:
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError("logdir", f"{str(folder)!r} is being written by a run or sweep that is still "
                                    "running; wait for it to end (or stop it: Ctrl-C saves its checkpoint), then "
                                    "start this one again") from None
    except OSError:
        os.close(fd)
        return
    _held[key] = fd


def release(folder: Path) -> None:
    """Let ``folder`` go (nothing if this process does not hold it). Its name is read against the working directory
    of now: a run or sweep releases by the absolute name it took (``os.path.abspath`` when it began), since a
    relative name after ``os.chdir`` names another folder (the lock stayed for the life of the process)."""
    fd = _held.pop(_key(folder), None)
    if fd is not None:
        os.close(fd)


def _key(folder: Path) -> str:
    """The folder's absolute name, from the text alone: no system call that a name too long or a folder removed
    could fail (a run keeps one name for its folder from start to end)."""
    return os.path.abspath(folder)


class FolderMoved(OSError):
    """The folder a run or sweep writes was renamed, moved or removed while it ran: writing on by its name would make
    a new folder there, or write into another run's (a sweep renamed away rebuilt its old path, and its results
    replaced those of a new sweep started there). One line for the user: str() in Python's words, and
    for_command_line() in the command line's, as :class:`.wording.Worded` errors are (``resume=True``, ``--resume``)."""

    def __init__(self, text: str, folder: Path) -> None:
        super().__init__(errno.ENOENT, words(text, command_line=False), str(folder))
        self.text = text

    def __str__(self) -> str:
        return self.strerror  # the line, which names the folder already

    def __reduce__(self):  # OSError's own pickles (errno, strerror, filename), which this __init__ does not take
        return type(self), (self.text, self.filename)

    for_command_line = Worded.for_command_line  # the same words from self.text (an OSError, so not a Worded)


class Watch:
    """The folder ``folder`` as it was when the watch began (its device and inode): :meth:`check` raises
    :class:`FolderMoved` when the name no longer leads to it."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.identity = folder, _identity(folder)
        self.absolute = os.path.abspath(folder)  # a relative name leads elsewhere after os.chdir

    def moved(self) -> bool:
        """Whether the name no longer leads to the folder (False while the watch has no folder to compare yet)."""
        return self.identity is not None and _identity(self.folder) != self.identity

    def check(self) -> None:
        if self.identity is None:  # the folder was not there yet when the watch began: from now on
            self.identity = _identity(self.folder)
            return
        now = _identity(self.folder)
        if now == self.identity:
            return
        if _identity(Path(self.absolute)) == self.identity:  # the folder is where it was: the process moved
            try:
                cwd = repr(os.getcwd())
            except OSError:  # the new working directory was removed
                cwd = "a folder since removed"
            raise FolderMoved(f"{str(self.folder)!r} names another folder now: the working directory changed while "
                              f"it ran (to {cwd}); nothing more was written by that name; it is {self.absolute!r}: "
                              "give an absolute folder, or change back before starting", self.folder)
        there = "nothing stands at that name now" if now is None else "another folder stands at that name now"
        moved = _held_path(self.absolute)
        where = ""
        if moved and _identity(Path(moved)) == self.identity:
            saved = any(Path(moved).glob("checkpoint*.pt"))  # a run's or sweep's, or a torchrun sweep's shares
            where = f"; it is now {moved!r}" + (f": continue it there with {setting('resume')}" if saved else "")
        raise FolderMoved(f"{str(self.folder)!r} was renamed, moved or removed while it ran ({there}); "
                          f"nothing more was written by that name{where}", self.folder)


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _held_path(absolute: str) -> str | None:
    """Where the folder this process holds under the absolute name ``absolute`` is now (Linux's /proc), or None."""
    fd = _held.get(absolute)
    if fd is None:
        return None
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return None if path.endswith(" (deleted)") else os.path.relpath(path)
