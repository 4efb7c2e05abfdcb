"""A size bound on the engine cache: the least recently used artefacts go first.

Every checkpoint (by content) and every input shape OpenVINO compiles adds an artefact of the
network's size (45 MB for the bundled mit_b0 graph and for each of its compiled shapes, about
300 MB for mscan_b): a robot whose checkpoints change, or a test suite, would otherwise fill
its disk. After each write the cache folder is trimmed to ``$SMMCL_CACHE_MAX_MB`` (default
4096; ``0`` = no bound) by deleting whole entries (an artefact together with its manifest:
the files of one folder that share a stem) in order of last use. Use is the newest mtime of an
entry's files; a cache hit touches its file. Entries used or written since the trimming call
began are never deleted, so a bound smaller than one artefact still keeps the one in use.

Deleting is safe while other processes run: a file that one has open stays readable (POSIX
unlink), and one that it was about to open is rebuilt (the loaders rebuild a cached file that
is missing or that the runtime rejects). Temporary files of writes in progress (dot names) are
never touched.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from stat import S_ISREG
from typing import Dict, List, Optional, Tuple, Union

LOG = logging.getLogger(__name__)
MAX_MB_ENV = 'SMMCL_CACHE_MAX_MB'
DEFAULT_MAX_MB = 4096


def max_cache_bytes() -> Optional[int]:
    """The bound in bytes from ``$SMMCL_CACHE_MAX_MB`` (unset: the default), None = no bound.

    Raises:
        ValueError: The variable is not a number of MB >= 0 (the message names it).
    """
    text = os.environ.get(MAX_MB_ENV, '').strip()
    if not text:
        return DEFAULT_MAX_MB * 2 ** 20
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ValueError(f'${MAX_MB_ENV} must be a size in MB >= 0 (0 = no bound), '
                         f'got {text!r}')
    return None if value == 0 else int(value * 2 ** 20)


def touch(path: Union[str, os.PathLike]) -> None:
    """Mark a cached file as used now (best effort: a read-only cache stays usable)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _entries(root: Path) -> List[Tuple[float, int, List[Path]]]:
    """``(last use, bytes, files)`` per entry under ``root``, oldest first."""
    groups: Dict[Tuple[Path, str], List[Tuple[Path, os.stat_result]]] = {}
    for path in root.rglob('*'):
        if path.name.startswith('.'):
            continue  # a write in progress (atomic_write) or a hidden file
        try:
            stat = path.stat()
        except OSError:
            continue  # removed meanwhile by another process
        if S_ISREG(stat.st_mode):
            groups.setdefault((path.parent, path.stem), []).append((path, stat))
    entries = [(max(s.st_mtime for _, s in files), sum(s.st_size for _, s in files),
                [p for p, _ in files]) for files in groups.values()]
    return sorted(entries, key=lambda entry: entry[0])


def trim_cache(root: Union[str, os.PathLike], used_since: float) -> List[Path]:
    """Delete least recently used entries under ``root`` until it fits the bound.

    Args:
        root: The cache folder (the one holding ``graphs/``, ``openvino/``...).
        used_since: ``time.time()`` when the caller began: entries used or written since then
            are kept even when the folder stays over the bound.

    Returns:
        The deleted files.
    """
    limit = max_cache_bytes()
    root = Path(root)
    if limit is None or not root.is_dir():
        return []
    entries = _entries(root)
    total = sum(size for _, size, _ in entries)
    removed: List[Path] = []
    for last_use, size, files in entries:
        if total <= limit or last_use >= used_since:
            break
        for path in files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            removed.append(path)
        total -= size
    if removed:
        LOG.info('engine cache %s: removed %d least recently used files to stay under %d MB '
                 '($%s)', root, len(removed), limit // 2 ** 20, MAX_MB_ENV)
    return removed
