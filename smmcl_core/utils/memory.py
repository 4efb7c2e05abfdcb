"""Give freed memory back to the operating system (after a model is released).

Freeing a network, an engine session or a compiled model returns its memory to the C
allocator, not to the system: glibc keeps the freed arenas, so a lifecycle node's RSS after
``cleanup`` depended on how the allocator happened to fragment (torch: 940-1140 MiB after the
same cycle). :func:`release_free_memory` collects garbage and asks glibc to return free pages
(``malloc_trim(0)``); elsewhere (musl, macOS) it only collects garbage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from typing import Optional


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Optional[ctypes._CFuncPtr]:
    """The C library's ``malloc_trim`` (glibc), or None where it has none."""
    name = ctypes.util.find_library('c')
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory(cuda: bool = False) -> bool:
    """Collect garbage and return free heap pages to the system; whether glibc did it.

    Args:
        cuda: Also empty torch's CUDA cache (after a CUDA model was released; the garbage
            collection first frees its tensors).
    """
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
