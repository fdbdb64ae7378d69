"""Files written whole or not at all: a temporary file beside the target, fsynced, renamed onto it.

Used by checkpoints, HParams files and sweep results (:mod:`torch_tanhnet.training.checkpoint`) and by the kernel
cache's checksums (:mod:`torch_tanhnet.kernels.cpu`); it imports nothing of the package, so the kernels can use it
without importing the training loop.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path, prefix: str | None = None):
    """A binary file that becomes ``path`` whole or not at all: written beside it (``prefix``, default
    ``.<name>.``, then a random part and ``.tmp``), fsynced, renamed onto it; removed if anything fails."""
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes) -> None:
    """``data`` into ``path`` whole or not at all, as :func:`replacing` writes it."""
    with replacing(Path(path)) as f:
        f.write(data)
