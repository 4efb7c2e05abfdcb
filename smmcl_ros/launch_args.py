"""The launch file's arguments and what they become for launch_ros's ``Node`` action.

``launch/segmentation.launch.py`` is a thin shell: it declares :data:`ARGUMENTS`, reads their
values and hands :func:`node_launch`'s result to ``launch_ros.actions.Node``. Everything that can
be wrong lives here, free of ``launch``/``launch_ros``, so that it is tested where those are not
installed; README's launch argument table is :func:`markdown_table`'s output.
"""

from dataclasses import dataclass
import os
from typing import Dict, List, Mapping, Optional, Tuple

from smmcl_ros.topics import NODE_NAME  # noqa: F401 (re-exported for the launch file)
EXECUTABLE = 'segmentation_node'
LIFECYCLE_EXECUTABLE = 'segmentation_lifecycle_node'
PACKAGE = 'smmcl_ros'
PARAMS_FILE = 'segmentation.yaml'  # in the package's share/<PACKAGE>/config
# Fast DDS profile with a shared-memory segment that holds several camera frames (config/).
FASTDDS_PROFILE = 'fastdds_large_images.xml'
# Fast DDS 2.x reads the first name, 3.x the second.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')


@dataclass(frozen=True)
class Argument:
    """One ``DeclareLaunchArgument``: name, default value (a string) and description."""

    name: str
    default: str
    description: str


# Every input topic the node may subscribe: launch argument -> the node's (relative) topic.
INPUTS: Tuple[Tuple[str, str, str, str], ...] = (
    # (argument, node topic, default, what it carries)
    ('rgb_topic', 'rgb/image', '/camera/color/image_raw', 'RGB image topic'),
    ('aux_topic', 'aux/image', '/camera/depth/image_rect_raw', 'depth or thermal image topic'),
    ('rgb_info_topic', 'rgb/camera_info', '/camera/color/camera_info',
     'camera_info of rgb_topic, republished with each mask as segmentation/camera_info'),
    ('aux_info_topic', 'aux/camera_info', '/camera/depth/camera_info',
     'camera_info of aux_topic, read for HHA, depth registration and segmentation/points'),
)

ARGUMENTS: Tuple[Argument, ...] = (
    Argument('checkpoint', '',
             'required: path to an smmcl checkpoint (`~` is expanded), or `demo` for the bundled '
             'demo model'),
    *(Argument(name, default, f"remapped to the node's {topic}: {what}")
      for name, topic, default, what in INPUTS),
    Argument('device', 'auto', 'auto, cpu or cuda'),
    Argument('backend', 'auto',
             'inference engine: auto, torch, openvino, onnxruntime or tensorrt'),
    Argument('aux_registration', '',
             'how the aux image is brought into the RGB frame: auto, none, resize, homography '
             "or depth (README 'Unregistered cameras'); empty: the parameter file's value"),
    Argument('namespace', '',
             "node namespace; a relative one goes under a parent launch file's "
             'PushRosNamespace, an absolute one (/robot1) replaces it'),
    Argument('params_file', '',
             'parameter YAML (top key `/**/smmcl_segmentation`, `~` is expanded); '
             "empty: the package's config/segmentation.yaml"),
    Argument('lifecycle', 'false', 'true: the managed (lifecycle) node, started unconfigured'),
    Argument('fastdds_profile', 'true',
             'true: Fast DDS profile with a shared-memory segment for camera-sized images, '
             'unless the environment already names a profile'),
    Argument('respawn', 'false', 'true: start the node again whenever it exits'),
    Argument('respawn_delay', '2.0', 'seconds to wait before a respawn'),
    Argument('shutdown_on_exit', 'false',
             'true: shut the whole launch down when the node exits (e.g. it cannot start), '
             'so a supervisor sees it; not with respawn'),
)
ARGUMENT_NAMES = tuple(argument.name for argument in ARGUMENTS)


@dataclass(frozen=True)
class NodeLaunch:
    """What the launch file passes to ``launch_ros.actions.Node``.

    Attributes:
        executable: ``segmentation_node`` or ``segmentation_lifecycle_node``.
        namespace: ``Node(namespace=...)``; None: the parent's (PushRosNamespace) or ``/``.
        arguments: ``Node(arguments=...)``, see :func:`node_command`.
        env: ``Node(additional_env=...)``, see :func:`node_env`.
        respawn: ``Node(respawn=...)``.
        respawn_delay: ``Node(respawn_delay=...)``, seconds.
        shutdown_on_exit: Whether the node's exit shuts the launch down
            (``Node(on_exit=Shutdown(...))``).
    """

    executable: str
    namespace: Optional[str]
    arguments: List[str]
    env: Dict[str, str]
    respawn: bool
    respawn_delay: float
    shutdown_on_exit: bool


def parse_bool(name: str, value: str) -> bool:
    """A launch argument's ``true``/``false`` (any case).

    Raises:
        ValueError: Naming the argument and its value.
    """
    lowered = value.strip().lower()
    if lowered not in ('true', 'false'):
        raise ValueError(f'launch argument {name}:={value!r} must be true or false')
    return lowered == 'true'


def parse_seconds(name: str, value: str) -> float:
    """A launch argument holding a number of seconds >= 0.

    Raises:
        ValueError: Naming the argument and its value.
    """
    try:
        seconds = float(value)
    except ValueError:
        seconds = float('nan')
    if not seconds >= 0.0 or seconds == float('inf'):
        raise ValueError(f'launch argument {name}:={value!r} must be a number of seconds >= 0')
    return seconds


def parse_namespace(value: str) -> Optional[str]:
    """The ``namespace`` argument for ``Node(namespace=...)``: None when empty.

    A relative namespace is kept relative so that launch_ros puts it under a parent's
    ``PushRosNamespace``.

    Raises:
        ValueError: Whitespace or ``:=`` in it.
    """
    _check_token('namespace', value)
    return value or None


def executable(lifecycle: bool) -> str:
    """The plain node, or the managed one that starts unconfigured."""
    return LIFECYCLE_EXECUTABLE if lifecycle else EXECUTABLE


def params_file(value: str, share_dir: str) -> str:
    """The parameter file: ``value`` with ``~`` expanded, or the package's default one.

    Raises:
        ValueError: The file does not exist (named as given and as expanded).
    """
    path = os.path.expanduser(value) if value else os.path.join(share_dir, 'config',
                                                                PARAMS_FILE)
    if not os.path.isfile(path):
        raise ValueError(f'launch argument params_file:={value!r}: no such file {path}')
    return path


def node_env(use_profile: bool, profile_path: str, environ: Mapping[str, str]) -> Dict[str, str]:
    """Environment additions for the node process.

    With ``use_profile`` the Fast DDS profile is applied, unless ``environ`` already names a
    profile file (the user's own DDS configuration wins). Other RMWs ignore these variables.
    """
    if not use_profile or any(environ.get(name) for name in PROFILE_VARIABLES):
        return {}
    return {name: str(profile_path) for name in PROFILE_VARIABLES}


def _check_token(name: str, value: str) -> None:
    if value and (any(c.isspace() for c in value) or ':=' in value):
        raise ValueError(f'launch argument {name}:={value!r} must not contain whitespace or ":="')


def node_command(params_file: Optional[str] = None, rgb_topic: str = '', aux_topic: str = '',
                 rgb_info_topic: str = '', aux_info_topic: str = '', checkpoint: str = '',
                 device: str = '', backend: str = '', aux_registration: str = '') -> List[str]:
    """ROS arguments for the node; empty values are left out.

    Order: ``--ros-args``, the params file, the input remaps, then ``-p`` overrides (rcl lets
    later arguments win, so launch arguments override the file). The namespace is not here:
    launch_ros adds it (and the node name) from ``Node(namespace=..., name=...)``.

    Args:
        params_file: YAML with ``/**/smmcl_segmentation: ros__parameters:``.
        rgb_topic: Topic remapped onto the node's ``rgb/image``.
        aux_topic: Topic remapped onto the node's ``aux/image``.
        rgb_info_topic: Topic remapped onto the node's ``rgb/camera_info``.
        aux_info_topic: Topic remapped onto the node's ``aux/camera_info`` (the depth
            camera's intrinsics, used by HHA checkpoints).
        checkpoint: Value of the ``checkpoint`` parameter (the node expands ``~``).
        device: Value of the ``device`` parameter (``auto``, ``cpu``, ``cuda``).
        backend: Value of the ``backend`` parameter (``auto``, ``torch``, ``openvino``, ...).
        aux_registration: Value of the ``aux_registration`` parameter (empty: the file's).

    Returns:
        e.g. ``['--ros-args', '--params-file', 'seg.yaml', '-r', 'rgb/image:=/cam/rgb',
        '-p', 'checkpoint:=model.pt']``.

    Raises:
        ValueError: A topic, device or backend holding whitespace or ``:=`` (it would be split
            or misparsed), naming the launch argument.
    """
    topics = dict(rgb_topic=rgb_topic, aux_topic=aux_topic, rgb_info_topic=rgb_info_topic,
                  aux_info_topic=aux_info_topic)
    overrides = (('checkpoint', checkpoint), ('device', device), ('backend', backend),
                 ('aux_registration', aux_registration))
    for name, value in (*topics.items(), *overrides[1:]):
        _check_token(name, value)
    args = ['--ros-args']
    if params_file:
        args += ['--params-file', str(params_file)]
    for name, topic, _, _ in INPUTS:
        if topics[name]:
            args += ['-r', f'{topic}:={topics[name]}']
    for name, value in overrides:
        if value:
            args += ['-p', f'{name}:={value}']
    return args


def node_launch(values: Mapping[str, str], share_dir: str,
                environ: Mapping[str, str]) -> NodeLaunch:
    """Turn the launch arguments' values into the node's launch description.

    Args:
        values: Every name in :data:`ARGUMENT_NAMES` -> its value (as ``LaunchConfiguration``
            performs it).
        share_dir: The package's ``share/smmcl_ros`` (``config/`` is read from there).
        environ: The launch process's environment (a Fast DDS profile already named there
            wins over the bundled one).

    Raises:
        KeyError: A value missing, naming it.
        ValueError: A bad value, naming the launch argument.
    """
    missing = [name for name in ARGUMENT_NAMES if name not in values]
    if missing:
        raise KeyError(f'launch arguments without a value: {missing}; valid: '
                       f'{list(ARGUMENT_NAMES)}')
    respawn = parse_bool('respawn', values['respawn'])
    shutdown_on_exit = parse_bool('shutdown_on_exit', values['shutdown_on_exit'])
    if respawn and shutdown_on_exit:
        raise ValueError('launch arguments respawn:=true and shutdown_on_exit:=true exclude '
                         'each other: the first exit would stop the launch instead of a respawn')
    config = os.path.join(share_dir, 'config')
    arguments = node_command(
        params_file=params_file(values['params_file'], share_dir),
        **{name: values[name] for name, _, _, _ in INPUTS},
        checkpoint=values['checkpoint'], device=values['device'], backend=values['backend'],
        aux_registration=values['aux_registration'])
    return NodeLaunch(
        executable=executable(parse_bool('lifecycle', values['lifecycle'])),
        namespace=parse_namespace(values['namespace']),
        arguments=arguments,
        env=node_env(parse_bool('fastdds_profile', values['fastdds_profile']),
                     os.path.join(config, FASTDDS_PROFILE), environ),
        respawn=respawn,
        respawn_delay=parse_seconds('respawn_delay', values['respawn_delay']),
        shutdown_on_exit=shutdown_on_exit)


def exit_reason(returncode: Optional[int]) -> str:
    """The launch's shutdown reason when the node exited (``shutdown_on_exit:=true``)."""
    return f'{NODE_NAME} exited with code {returncode} (shutdown_on_exit:=true)'


def markdown_table() -> str:
    """Markdown table of the launch arguments (name, default, description) for README."""
    rows = ['| argument | default | |', '|---|---|---|']
    for argument in ARGUMENTS:
        default = f'`{argument.default}`' if argument.default else "`''`"
        rows.append(f'| `{argument.name}` | {default} | {argument.description} |')
    return '\n'.join(rows) + '\n'
