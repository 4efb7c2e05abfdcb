"""The one way to rebuild a network from a loaded smmcl checkpoint."""

import os
from typing import Any, Mapping, Union

from torch import nn

from smmcl_core.models.presets import create_model


def model_from_state(state: Mapping[str, Any], path: Union[str, os.PathLike]) -> nn.Module:
    """``create_model(meta['preset'], meta['num_classes'])`` with the checkpoint's weights.

    No pretrained download: every weight comes from ``state['model']``.

    Args:
        state: Checkpoint dict from ``smmcl_core.checkpoint.load_checkpoint``.
        path: The checkpoint file (named in errors).

    Raises:
        KeyError: the preset in ``meta`` is unknown to ``create_model``.
        RuntimeError: the weights do not fit the rebuilt network (message names the file).
    """
    meta = state['meta']
    model = create_model(meta['preset'], int(meta['num_classes']))
    try:
        model.load_state_dict(state['model'])
    except RuntimeError as exc:
        raise RuntimeError(f'checkpoint {path}: weights do not match preset '
                           f"{meta['preset']!r}: {exc}") from exc
    return model
