"""Command-line construction for the segmentation node, shared by the launch file and tests.

Kept free of ``launch``/``launch_ros`` so that it can be tested where those are not installed.
"""

from typing import Dict, List, Mapping, Optional

NODE_NAME = 'smmcl_segmentation'
EXECUTABLE = 'segmentation_node'
LIFECYCLE_EXECUTABLE = 'segmentation_lifecycle_node'
PACKAGE = 'smmcl_ros'
# Fast DDS profile with a shared-memory segment that holds several camera frames (config/).
FASTDDS_PROFILE = 'fastdds_large_images.xml'
# Fast DDS 2.x reads the first name, 3.x the second.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')


def parse_bool(name: str, value: str) -> bool:
    """A launch argument's ``true``/``false`` (any case).

    Raises:
        ValueError: Naming the argument and its value.
    """
    lowered = value.strip().lower()
    if lowered not in ('true', 'false'):
        raise ValueError(f'launch argument {name}:={value!r} must be true or false')
    return lowered == 'true'


def executable(lifecycle: bool) -> str:
    """The plain node, or the managed one that starts unconfigured."""
    return LIFECYCLE_EXECUTABLE if lifecycle else EXECUTABLE


def node_env(use_profile: bool, profile_path: str, environ: Mapping[str, str]) -> Dict[str, str]:
    """Environment additions for the node process.

    With ``use_profile`` the Fast DDS profile is applied, unless ``environ`` already names a
    profile file (the user's own DDS configuration wins). Other RMWs ignore these variables.
    """
    if not use_profile or any(environ.get(name) for name in PROFILE_VARIABLES):
        return {}
    return {name: str(profile_path) for name in PROFILE_VARIABLES}


def node_command(params_file: Optional[str] = None, namespace: str = '',
                 rgb_topic: str = '', aux_topic: str = '', checkpoint: str = '',
                 device: str = '', backend: str = '', aux_info_topic: str = ''
                 ) -> List[str]:
    """ROS arguments for ``segmentation_node``; empty values are left out.

    Order: ``--ros-args``, the params file, the namespace, the input remaps, then ``-p``
    overrides (later arguments win over the params file).

    Args:
        params_file: YAML with ``smmcl_segmentation: ros__parameters:``.
        namespace: Node namespace; a leading ``/`` is added when missing.
        rgb_topic: Topic remapped onto the node's ``rgb/image``.
        aux_topic: Topic remapped onto the node's ``aux/image``.
        checkpoint: Value of the ``checkpoint`` parameter.
        device: Value of the ``device`` parameter (``auto``, ``cpu``, ``cuda``).
        backend: Value of the ``backend`` parameter (``auto``, ``torch``, ``openvino``, ...).
        aux_info_topic: Topic remapped onto the node's ``aux/camera_info`` (the depth
            camera's intrinsics, used by HHA checkpoints).

    Returns:
        e.g. ``['--ros-args', '--params-file', 'seg.yaml', '-r', '__ns:=/robot',
        '-r', 'rgb/image:=/cam/rgb', '-p', 'checkpoint:=model.pt']``.

    Raises:
        ValueError: A value holding whitespace or ``:=`` (it would be split or misparsed).
    """
    for name, value in (('namespace', namespace), ('rgb_topic', rgb_topic),
                        ('aux_topic', aux_topic), ('device', device), ('backend', backend),
                        ('aux_info_topic', aux_info_topic)):
        if value and (any(c.isspace() for c in value) or ':=' in value):
            raise ValueError(f'{name} {value!r} must not contain whitespace or ":="')
    args = ['--ros-args']
    if params_file:
        args += ['--params-file', str(params_file)]
    if namespace:
        args += ['-r', '__ns:=' + (namespace if namespace.startswith('/') else '/' + namespace)]
    if rgb_topic:
        args += ['-r', f'rgb/image:={rgb_topic}']
    if aux_topic:
        args += ['-r', f'aux/image:={aux_topic}']
    if aux_info_topic:
        args += ['-r', f'aux/camera_info:={aux_info_topic}']
    if checkpoint:
        args += ['-p', f'checkpoint:={checkpoint}']
    if device:
        args += ['-p', f'device:={device}']
    if backend:
        args += ['-p', f'backend:={backend}']
    return args
