"""HHA depth encoding (Gupta et al. 2014), as the authors' MATLAB ``saveHHA`` computes it.

- ``intrinsics``: pinhole ``K`` (build, check, scale) and the NYU Depth v2 camera.
- ``encode``: the algorithm with numpy + OpenCV (CPU); read it for the conventions.
- ``torch_encode``: the same with torch on a tensor's device (imports torch).
- ``convert``: :func:`depth_to_hha`, numpy or torch by the input's type.
- ``live``: :class:`HHAEncoder` for a depth stream (raw units, device, gravity smoothing).

Importing this package does not import torch (the ROS node imports it); only torch tensors or a
CUDA :class:`HHAEncoder` load it.
"""

from smmcl_core.data.hha.convert import depth_to_hha
from smmcl_core.data.hha.encode import (encode_hha, estimate_gravity, unit_vector,
                                        write_hha)
from smmcl_core.data.hha.intrinsics import (camera_matrix, check_intrinsics,
                                            NYU_DEPTH_V2_K, NYU_DEPTH_V2_SIZE,
                                            nyu_intrinsics, scale_intrinsics)
from smmcl_core.data.hha.live import (depth_to_metres, GravitySmoother, HHAEncoder,
                                      MISSING_DEPTH_HHA, missing_depth_hha)

__all__ = [
    'GravitySmoother', 'HHAEncoder', 'MISSING_DEPTH_HHA', 'NYU_DEPTH_V2_K', 'NYU_DEPTH_V2_SIZE',
    'camera_matrix', 'check_intrinsics', 'depth_to_hha', 'depth_to_metres', 'encode_hha',
    'estimate_gravity', 'missing_depth_hha', 'nyu_intrinsics', 'scale_intrinsics',
    'unit_vector', 'write_hha',
]
