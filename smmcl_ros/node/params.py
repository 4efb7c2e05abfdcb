"""Parameters of the ``smmcl_segmentation`` node: declared with defaults, read once, validated.

``config/segmentation.yaml`` mirrors :data:`DEFAULTS`; keep the two in step.
"""

from dataclasses import dataclass, fields
import os
from typing import Any, Dict, Tuple

from smmcl_ros.demo.bundled import resolve_checkpoint
from smmcl_ros.messages.label_info import check_threshold
from smmcl_ros.pipeline.confidence import CONFIDENCE_ENCODINGS

DEFAULTS: Dict[str, Any] = {
    'checkpoint': '',
    'device': 'auto',
    'precision': 'fp32',
    'backend': 'auto',  # checked by Segmenter (smmcl_core.engines.BACKENDS)
    'aux_modality': '',
    'sync_slop': 0.05,
    'sync_queue_size': 10,
    'qos': 'auto',
    'output_qos': 'reliable',
    'publish_color': True,
    'publish_overlay': True,
    'publish_confidence': False,
    'overlay_alpha': 0.5,
    'aux_timeout': 1.0,
    'on_missing_aux': 'wait',
    'diagnostics_period': 1.0,
    'log_throttle_sec': 5.0,
    'hha_gravity_smoothing': 0.0,
    'aux_registration': 'auto',  # smmcl_core.data.registration.MODES
    'publish_points': True,  # depth / HHA checkpoints, built only while someone subscribes
    'points_stride': 1,
    'points_max_range': 0.0,  # metres along the optical axis, 0 = no limit
    'confidence_encoding': '32FC1',
    'label_info_threshold': 0.0,
}
# Declared separately: a string array has no usable empty default in rclpy (an empty list is
# typed as a byte array), so it is declared by type and read with an empty fallback.
CLASS_NAMES = 'class_names'
# Number arrays, empty by default (same rclpy limitation), declared with dynamic typing so that
# a YAML list of integers ([1, 0, 0, ...]) is accepted as well as one of floats.
NUMBER_ARRAYS = ('aux_homography', 'aux_to_rgb')

# Parameters naming a file or folder: a leading ``~`` is expanded (bash leaves it alone after
# ``:=``, and rcl does not expand it in parameter files).
PATH_PARAMETERS: Tuple[str, ...] = ('checkpoint',)
POINTS_CLASSES = 'points_classes'  # class names kept in segmentation/points ([] = all)
STRING_ARRAYS = (CLASS_NAMES, POINTS_CLASSES)

CHOICES: Dict[str, Tuple[str, ...]] = {
    'device': ('auto', 'cpu', 'cuda'),
    'precision': ('fp32', 'fp16', 'bf16'),
    'aux_modality': ('', 'depth', 'thermal', 'hha'),
    'qos': ('auto', 'sensor_data', 'reliable'),
    'output_qos': ('reliable', 'sensor_data'),
    'on_missing_aux': ('wait', 'rgb_only'),
    'aux_registration': ('auto', 'none', 'resize', 'homography', 'depth'),
    'confidence_encoding': CONFIDENCE_ENCODINGS,
}


class ParameterError(ValueError):
    """An invalid node parameter; the message names the parameter and the valid values."""


@dataclass(frozen=True)
class NodeParams:
    """Validated node parameters (see ``config/segmentation.yaml`` for their meaning)."""

    checkpoint: str
    device: str
    precision: str
    aux_modality: str
    sync_slop: float
    sync_queue_size: int
    qos: str
    output_qos: str
    publish_color: bool
    publish_overlay: bool
    publish_confidence: bool
    overlay_alpha: float
    aux_timeout: float
    on_missing_aux: str
    diagnostics_period: float
    log_throttle_sec: float
    hha_gravity_smoothing: float = 0.0
    backend: str = 'auto'
    class_names: Tuple[str, ...] = ()
    aux_registration: str = 'auto'
    aux_homography: Tuple[float, ...] = ()
    aux_to_rgb: Tuple[float, ...] = ()
    publish_points: bool = True
    points_stride: int = 1
    points_max_range: float = 0.0
    points_classes: Tuple[str, ...] = ()
    confidence_encoding: str = '32FC1'
    label_info_threshold: float = 0.0


def validate(values: Dict[str, Any]) -> NodeParams:
    """Check raw parameter values and build :class:`NodeParams`.

    Raises:
        ParameterError: Naming the first offending parameter.
    """
    values = dict(values)
    for name in PATH_PARAMETERS:
        if values.get(name):
            values[name] = os.path.expanduser(str(values[name]))
    try:
        values['checkpoint'] = resolve_checkpoint(str(values.get('checkpoint') or ''))
    except ValueError as err:
        raise ParameterError(f"parameter 'checkpoint': {err}") from err
    for name, choices in CHOICES.items():
        if values[name] not in choices:
            raise ParameterError(
                f'parameter {name!r} = {values[name]!r} is invalid; valid: {list(choices)}')
    positive = ('sync_slop', 'aux_timeout', 'diagnostics_period')
    for name in positive:
        if not float(values[name]) > 0:
            raise ParameterError(f'parameter {name!r} must be > 0, got {values[name]!r}')
    if int(values['sync_queue_size']) < 1:
        raise ParameterError(
            f"parameter 'sync_queue_size' must be >= 1, got {values['sync_queue_size']!r}")
    if not 0.0 <= float(values['overlay_alpha']) <= 1.0:
        raise ParameterError(
            f"parameter 'overlay_alpha' must be in [0, 1], got {values['overlay_alpha']!r}")
    if not 0.0 <= float(values.get('hha_gravity_smoothing', 0.0)) < 1.0:
        raise ParameterError(f"parameter 'hha_gravity_smoothing' must be in [0, 1), got "
                             f"{values['hha_gravity_smoothing']!r}")
    try:
        check_threshold(values.get('label_info_threshold', 0.0))
    except ValueError as err:
        raise ParameterError(str(err)) from err
    # points_stride / points_max_range / points_classes are checked against the checkpoint's
    # classes once it is loaded (smmcl_ros.pipeline.points.points_config).
    kwargs = {f.name: values[f.name] for f in fields(NodeParams) if f.name in values}
    for name in STRING_ARRAYS:
        kwargs[name] = tuple(values.get(name) or ())
    for name in NUMBER_ARRAYS:
        raw = values.get(name) or ()
        try:
            kwargs[name] = tuple(float(v) for v in raw)
        except (TypeError, ValueError) as err:
            raise ParameterError(f'parameter {name!r} must be a list of numbers, got '
                                 f'{raw!r}') from err
    try:  # the registration checks the arrays (count, finite, invertible) and the mode
        from smmcl_ros.pipeline.registration import AuxRegistration

        AuxRegistration(values.get('aux_registration', 'auto'),
                        values.get('aux_modality') or 'depth', kwargs['aux_homography'],
                        kwargs['aux_to_rgb'])
    except ValueError as err:
        raise ParameterError(f'parameter {_registration_key(str(err))!r}: {err}') from err
    return NodeParams(**kwargs)


def _registration_key(message: str) -> str:
    for name in NUMBER_ARRAYS:
        if message.startswith(name) or f' {name} ' in message:
            return name
    return 'aux_registration'


def declare_and_read(node: Any) -> NodeParams:
    """Declare every parameter on an rclpy node with its default, read once and validate."""
    declare(node)
    return read(node)


def declare(node: Any) -> None:
    """Declare every parameter with its default (the lifecycle node reads them on configure)."""
    from rclpy.parameter import Parameter  # keep this module importable without ROS

    from rcl_interfaces.msg import ParameterDescriptor

    for name, default in DEFAULTS.items():
        node.declare_parameter(name, default)
    for name in STRING_ARRAYS:
        node.declare_parameter(name, Parameter.Type.STRING_ARRAY)
    for name in NUMBER_ARRAYS:
        node.declare_parameter(name, None, ParameterDescriptor(dynamic_typing=True))


def read(node: Any) -> NodeParams:
    """Read the declared parameters' current values and validate them."""
    from rclpy.parameter import Parameter

    values = {name: node.get_parameter(name).value for name in DEFAULTS}
    for name in STRING_ARRAYS:
        fallback = Parameter(name, Parameter.Type.STRING_ARRAY, [])
        values[name] = list(node.get_parameter_or(name, fallback).value or [])
    for name in NUMBER_ARRAYS:
        values[name] = list(node.get_parameter(name).value or [])
    return validate(values)
