"""Command-line construction for the segmentation node, shared by the launch file and tests.

Kept free of ``launch``/``launch_ros`` so that it can be tested where those are not installed.
"""

from typing import List, Optional

NODE_NAME = 'smmcl_segmentation'
EXECUTABLE = 'segmentation_node'
PACKAGE = 'smmcl_ros'


def node_command(params_file: Optional[str] = None, namespace: str = '',
                 rgb_topic: str = '', aux_topic: str = '', checkpoint: str = '',
                 device: str = '', backend: str = '') -> List[str]:
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

    Returns:
        e.g. ``['--ros-args', '--params-file', 'seg.yaml', '-r', '__ns:=/robot',
        '-r', 'rgb/image:=/cam/rgb', '-p', 'checkpoint:=model.pt']``.

    Raises:
        ValueError: A value holding whitespace or ``:=`` (it would be split or misparsed).
    """
    for name, value in (('namespace', namespace), ('rgb_topic', rgb_topic),
                        ('aux_topic', aux_topic), ('device', device), ('backend', backend)):
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
    if checkpoint:
        args += ['-p', f'checkpoint:={checkpoint}']
    if device:
        args += ['-p', f'device:={device}']
    if backend:
        args += ['-p', f'backend:={backend}']
    return args
