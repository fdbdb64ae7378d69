"""Files written whole or not at all: a temporary file beside the target, fsynced, renamed onto it.

Used by checkpoints, HParams files and sweep results (:mod:`torch_tanhnet.training.checkpoint`) and by the kernel
cache's checksums (:mod:`torch_tanhnet.kernels.cpu`); it imports nothing of the package, so the kernels can use it
without importing the training loop.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path

NAME_MAX = 255  # bytes in a file's name: Linux's, macOS's and Windows' file systems
RANDOM_DIGITS = 12  # hex digits of a temporary file's random part


def reason(e: OSError) -> str:
    """An OSError's reason for a message: its strerror; for too many open files, with the limit that binds (a run
    under ``ulimit -n 5`` blamed the file it could not open, a module of torch's among them)."""
    why = str(e.strerror or e)
    if e.errno == errno.EMFILE:
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            why += f": this process may open at most {soft} files at once (ulimit -n {soft}); raise the limit"
        except (ImportError, OSError, ValueError):
            pass
    return why


def temporary_name(path: Path) -> Path:
    """The name :func:`replacing` writes ``path`` under first (its random part as zeros): as long as any it takes."""
    return path.with_name(f".{path.name}.{'0' * RANDOM_DIGITS}.tmp")


@contextmanager
def replacing(path: Path, prefix: str | None = None, sync: bool = True):
    """A binary file that becomes ``path`` whole or not at all: written beside it (``prefix``, default
    ``.<name>.``, then a random part and ``.tmp``), fsynced (unless ``sync`` is False: what can be written again),
    renamed onto it; removed if anything fails. Its permissions are a new file's (0666 less the umask), as
    ``open`` makes them."""
    fd, tmp = new_file(path.parent, prefix or f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename is None and e.errno is not None:  # a write's or fsync's error names no file: the one it was
            raise type(e)(e.errno, e.strerror, str(path)) from None  # for (a sweep said "cannot write (No space ...)")
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes, sync: bool = True) -> None:
    """``data`` into ``path`` whole or not at all, as :func:`replacing` writes it."""
    with replacing(Path(path), sync=sync) as f:
        f.write(data)


def new_file(folder: Path | str, prefix: str) -> tuple[int, str]:
    """A new file ``<prefix><random>.tmp`` in ``folder``, opened for writing: as ``tempfile.mkstemp`` makes one, but
    with a new file's permissions. mkstemp's are 0600 whatever the umask, and the rename kept them: checkpoints,
    HParams files and sweep.json that another user, or a TensorBoard service, could not read."""
    room = NAME_MAX - RANDOM_DIGITS - len(".tmp")  # a name at the file system's limit keeps its temporary one in it
    if len(os.fsencode(prefix)) > room:
        prefix = os.fsdecode(os.fsencode(prefix)[:room])  # (a cut byte of a UTF-8 character: kept as its escape)
    for _ in range(100):
        path = os.path.join(folder, f"{prefix}{os.urandom(RANDOM_DIGITS // 2).hex()}.tmp")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {str(folder)!r}")
