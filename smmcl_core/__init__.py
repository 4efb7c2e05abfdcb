"""SMMCL core: network, losses, data and training engine (no ROS imports).

``from smmcl_core import Segmenter`` is the public entry point for inference; it is imported
on first use, so ``import smmcl_core`` alone stays light (no torch).
"""

__version__ = '0.1.0'
__all__ = ['Segmenter']


def __getattr__(name: str):
    if name == 'Segmenter':
        from smmcl_core.segmenter import Segmenter
        return Segmenter
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
