"""``depth_to_hha``: the one HHA entry point, numpy or torch by the type of the depth.

numpy arrays go through :mod:`smmcl_core.data.hha.encode` (OpenCV, CPU); torch tensors through
:mod:`smmcl_core.data.hha.torch_encode` on their device. torch is imported only for tensors.
"""

from typing import Any, Optional, Union

import numpy as np

from smmcl_core.data.hha.encode import encode_hha

ArrayLike = Union[np.ndarray, Any]  # numpy array or torch tensor


def depth_to_hha(depth: ArrayLike, K: Any, raw_depth: Optional[ArrayLike] = None) -> ArrayLike:
    """Encode one depth image as HHA, as the original MATLAB ``saveHHA`` does.

    Args:
        depth: ``(H,W)`` depth in metres (float; 0/NaN/inf/negative = missing), a numpy
            array or a torch tensor (then computed with torch on its device).
        K: 3x3 intrinsics of the depth image (0-based pixels; see the module docstring).
        raw_depth: Optional sensor depth before hole filling, same size; its missing pixels
            are left out of the normal fits.

    Returns:
        ``uint8 (H,W,3)`` (disparity, height, angle): numpy for numpy input, a tensor on the
        input's device for tensor input.

    Raises:
        ValueError: Bad shapes, sizes or intrinsics (the message names which).
    """
    if type(depth).__module__.startswith('torch'):
        from smmcl_core.data.hha.torch_encode import depth_to_hha_torch
        return depth_to_hha_torch(depth, K, raw_depth)
    return encode_hha(depth, K, raw_depth)[0]
