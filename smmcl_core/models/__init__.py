"""SMMCL network (paper §3.1): dual-stream encoders, interaction modules, decoders, projectors.

Public API: :func:`create_model`, :data:`PRESETS`, :class:`SMMCLNet`, :func:`load_pretrained`.
"""

from smmcl_core.models.network import DualEncoder, SMMCLNet
from smmcl_core.models.presets import create_model, preset_config, PRESETS
from smmcl_core.models.pretrained import (load_pretrained, official_state_dict,
                                          PretrainedMismatchError)

__all__ = ['create_model', 'DualEncoder', 'load_pretrained', 'official_state_dict', 'PRESETS',
           'preset_config', 'PretrainedMismatchError', 'SMMCLNet']
