"""Optional dependencies: import them with an error that names the pip extra to install.

The runtime install (``pip install 'smmcl_ros[openvino]'`` or ``[onnxruntime]``) has no torch:
an exported graph runs on numpy and the engine alone. Everything that needs torch (the
``torch`` backend, exporting a checkpoint, training) imports it through :func:`import_torch`,
so a missing torch says which extra brings it.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def import_optional(module: str, purpose: str, extra: str, hint: str = '') -> ModuleType:
    """``import module``, or :class:`MissingExtraError` saying ``purpose`` needs ``extra``.

    Args:
        module: Module to import (e.g. ``'torch'``).
        purpose: What needs it, for the message (e.g. ``"backend 'torch'"``).
        extra: The ``smmcl_ros`` extra that installs it (e.g. ``'torch'``).
        hint: Another way out, appended to the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f'{purpose} needs {module}, which is not installed: pip install '
            f"'smmcl_ros[{extra}]'{hint} ({exc})") from exc


def import_torch(purpose: str, extra: str = 'torch', hint: str = '') -> ModuleType:
    """``import torch`` for ``purpose`` (see :func:`import_optional`)."""
    return import_optional('torch', purpose, extra, hint)
