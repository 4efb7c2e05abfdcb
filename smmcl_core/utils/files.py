"""File helpers: content hashing and atomic replacement."""

import hashlib
import os
from pathlib import Path
import tempfile
from typing import Callable, Union

PathLike = Union[str, os.PathLike]


def sha256_file(path: PathLike, chunk_size: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk_size`` chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: PathLike, write: Callable[[Path], None], durable: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it into place.

    A crash or an exception inside ``write`` never leaves a half-written ``path``: the
    temporary file is removed and ``path`` keeps its old content (or stays absent).

    Args:
        path: Destination; its folder is created when missing.
        write: Writes the complete content to the temporary path it is given.
        durable: Also fsync the temporary file and the folder, so that the content and the
            rename survive a power loss (checkpoints).

    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        if durable:
            with open(tmp, 'rb+') as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path
