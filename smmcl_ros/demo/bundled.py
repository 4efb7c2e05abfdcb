"""Files bundled with the package: the demo checkpoint and the sample bag.

Both were made with the project's own tools (see README, "The embedded default"): the
checkpoint by ``smmcl-train`` on the synthetic dark RGB-thermal scenes, the bag by
``smmcl-make-bag`` from held-out synthetic scenes. They live inside the Python package so that
``pip install``, ``colcon build`` and a source checkout all find them.
"""

from pathlib import Path

from smmcl_ros import topics

ASSETS = Path(__file__).resolve().parent / 'assets'
DEMO_CHECKPOINT = ASSETS / 'demo_checkpoint.pth'
SAMPLE_BAG = ASSETS / 'sample_bag'
DEMO = 'demo'  # the checkpoint value (node parameter, --checkpoint) naming DEMO_CHECKPOINT
# Topics of the sample bag (written by smmcl-make-bag's defaults).
SAMPLE_TOPICS = {'rgb': topics.CAMERA_RGB, 'aux': topics.CAMERA_AUX, 'label': topics.BAG_LABEL}


def default_checkpoint() -> Path:
    """The bundled demo checkpoint; raises ``FileNotFoundError`` naming it when absent."""
    if not DEMO_CHECKPOINT.is_file():
        raise FileNotFoundError(f'bundled demo checkpoint missing: {DEMO_CHECKPOINT}')
    return DEMO_CHECKPOINT


def resolve_checkpoint(value: str) -> str:
    """A checkpoint setting as a path: ``demo`` is the bundled demo checkpoint.

    The demo model is used only when asked for by name: a robot whose checkpoint setting got
    lost must not drive on a model trained on synthetic scenes.

    Raises:
        ValueError: ``value`` is empty (the message says what to set).
    """
    if not value.strip():
        raise ValueError(f'no checkpoint given: set a checkpoint file, or {DEMO!r} for the '
                         f'bundled demo model ({DEMO_CHECKPOINT.name}, trained on synthetic '
                         'RGB-thermal scenes only)')
    return str(DEMO_CHECKPOINT) if value == DEMO else value
