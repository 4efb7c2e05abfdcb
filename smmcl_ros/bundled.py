"""Files bundled with the package: the demo checkpoint and the sample bag.

Both were made with the project's own tools (see README, "The embedded default"): the
checkpoint by ``smmcl-train`` on the synthetic dark RGB-thermal scenes, the bag by
``smmcl-make-bag`` from held-out synthetic scenes. They live inside the Python package so that
``pip install``, ``colcon build`` and a source checkout all find them.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / 'assets'
DEMO_CHECKPOINT = ASSETS / 'demo_checkpoint.pth'
SAMPLE_BAG = ASSETS / 'sample_bag'
# Topics of the sample bag (written by smmcl-make-bag's defaults).
SAMPLE_TOPICS = {
    'rgb': '/camera/color/image_raw',
    'aux': '/camera/aux/image_raw',
    'label': '/segmentation/label',
}


def default_checkpoint() -> Path:
    """The bundled demo checkpoint; raises ``FileNotFoundError`` naming it when absent."""
    if not DEMO_CHECKPOINT.is_file():
        raise FileNotFoundError(f'bundled demo checkpoint missing: {DEMO_CHECKPOINT}')
    return DEMO_CHECKPOINT
