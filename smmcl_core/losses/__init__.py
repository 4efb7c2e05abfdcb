"""Supervised multi-modal contrastive loss (paper §3.2)."""

from smmcl_core.losses.infonce import supervised_infonce
from smmcl_core.losses.sampling import downscale_labels, sample_positions, Samples
from smmcl_core.losses.smmcl import MODES, SMMCLLoss

__all__ = ['MODES', 'SMMCLLoss', 'Samples', 'downscale_labels', 'sample_positions',
           'supervised_infonce']
