"""The one ``torch.load(weights_only=True)`` call and its error mapping.

Every loader (smmcl checkpoints, the authors' released files, pretrained backbone weights)
reads through :func:`load_weights_only`, so a corrupt, truncated or code-carrying file gives
the same message everywhere, naming the file.
"""

import os
import pickle
from typing import Any, Type, Union
import zipfile

import torch


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_weights_only(path: Union[str, os.PathLike], error: Type[Exception],
                      what: str = 'checkpoint', map_location: Any = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)``; failures raise ``error`` naming the file.

    Args:
        path: File to read (its existence is the caller's check: each names it its own way).
        error: Exception type to raise (a ``ValueError`` subclass of the caller's).
        what: Word for the file in messages (``'checkpoint'``, ``'pretrained weights'``).
        map_location: Passed to ``torch.load``.

    Raises:
        error: Objects that weights-only loading refuses (code), or a corrupt / truncated
            file (including one that is not a torch zip archive).
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(path):  # every torch.save since 1.6 writes a zip archive
            raise error(f'{what} {path} is corrupt or truncated (not a torch zip archive): '
                        f'{first_line(exc)}') from exc
        raise error(f'{what} {path} holds objects that weights_only loading refuses (it may '
                    f'contain code; only tensors and plain values are allowed): {exc}') from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise error(f'{what} {path} is corrupt or truncated: {first_line(exc)}') from exc
