"""The launch arguments (smmcl_ros.launch_args), the launch file declaring them, README's table.

The launch file is a thin shell over ``launch_args``; its own test needs the real ``launch`` and
``launch_ros`` packages (a colcon-built ROS 2 workspace) and is skipped without them. The node
processes started with these arguments are tested in test/e2e/test_launch_usage.py.
"""

import ast
import importlib.util
import math
import os
from pathlib import Path

import pytest
import yaml

from smmcl_ros.launch_args import (ARGUMENT_NAMES, ARGUMENTS, executable, exit_reason,
                                   FASTDDS_PROFILE, INPUTS, markdown_table, node_command,
                                   node_env, node_launch, NODE_NAME, parse_bool,
                                   parse_namespace, parse_seconds)
from smmcl_ros.node.params import DEFAULTS, validate

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch' / 'segmentation.launch.py'
CONFIG = REPO / 'config' / 'segmentation.yaml'
README = REPO / 'README.md'
PROFILE = str(REPO / 'config' / FASTDDS_PROFILE)


def _defaults(**changes):
    values = {argument.name: argument.default for argument in ARGUMENTS}
    values.update(changes)
    return values


def test_every_argument_once_with_the_documented_defaults():
    assert len(set(ARGUMENT_NAMES)) == len(ARGUMENT_NAMES)
    assert ARGUMENT_NAMES == (
        'checkpoint', 'rgb_topic', 'aux_topic', 'rgb_info_topic', 'aux_info_topic', 'device',
        'backend', 'aux_registration', 'namespace', 'params_file', 'lifecycle',
        'fastdds_profile', 'respawn', 'respawn_delay', 'shutdown_on_exit')
    defaults = dict(_defaults())
    assert defaults['rgb_info_topic'] == '/camera/color/camera_info'
    assert defaults['aux_info_topic'] == '/camera/depth/camera_info'
    assert all(argument.description for argument in ARGUMENTS)
    # One argument per input the node subscribes (rgb/camera_info is always subscribed,
    # aux/camera_info by HHA checkpoints).
    topics = [topic for _, topic, _, _ in INPUTS]
    assert topics == ['rgb/image', 'aux/image', 'rgb/camera_info', 'aux/camera_info']


def test_node_launch_with_the_defaults(tmp_path):
    share = tmp_path / 'share'
    (share / 'config').mkdir(parents=True)
    (share / 'config' / 'segmentation.yaml').write_text(CONFIG.read_text())
    spec = node_launch(_defaults(), str(share), {})
    params = str(share / 'config' / 'segmentation.yaml')
    assert spec.arguments == [
        '--ros-args', '--params-file', params,
        '-r', 'rgb/image:=/camera/color/image_raw',
        '-r', 'aux/image:=/camera/depth/image_rect_raw',
        '-r', 'rgb/camera_info:=/camera/color/camera_info',
        '-r', 'aux/camera_info:=/camera/depth/camera_info',
        '-p', 'device:=auto', '-p', 'backend:=auto']
    assert spec.executable == 'segmentation_node'
    assert spec.namespace is None  # launch_ros then uses the parent's PushRosNamespace, or /
    profile = str(share / 'config' / FASTDDS_PROFILE)
    assert spec.env == {'FASTRTPS_DEFAULT_PROFILES_FILE': profile,
                        'FASTDDS_DEFAULT_PROFILES_FILE': profile}
    assert (spec.respawn, spec.respawn_delay, spec.shutdown_on_exit) == (False, 2.0, False)


def test_node_launch_with_every_argument_set(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    (tmp_path / 'cfg').mkdir()
    (tmp_path / 'cfg' / 'mine.yaml').write_text(CONFIG.read_text())
    spec = node_launch(_defaults(
        checkpoint='~/models/nyu.pth', rgb_topic='/cam/color/image_raw',
        aux_topic='/cam/depth/image_raw', rgb_info_topic='/cam/color/camera_info',
        aux_info_topic='/cam/depth/camera_info', device='cuda', backend='tensorrt',
        namespace='robot1', params_file='~/cfg/mine.yaml', lifecycle='true',
        fastdds_profile='false', respawn='true', respawn_delay='0.5'),
        str(tmp_path / 'unused_share'), {})
    assert spec.arguments == [
        '--ros-args', '--params-file', str(tmp_path / 'cfg' / 'mine.yaml'),
        '-r', 'rgb/image:=/cam/color/image_raw', '-r', 'aux/image:=/cam/depth/image_raw',
        '-r', 'rgb/camera_info:=/cam/color/camera_info',
        '-r', 'aux/camera_info:=/cam/depth/camera_info',
        # The node expands ~ in the checkpoint itself (ros2 run and YAML files need it too).
        '-p', 'checkpoint:=~/models/nyu.pth', '-p', 'device:=cuda', '-p', 'backend:=tensorrt']
    assert spec.executable == 'segmentation_lifecycle_node'
    assert spec.namespace == 'robot1'  # relative: composes with PushRosNamespace
    assert spec.env == {}
    assert (spec.respawn, spec.respawn_delay, spec.shutdown_on_exit) == (True, 0.5, False)
    assert node_launch(_defaults(namespace='/robot1', shutdown_on_exit='TRUE',
                                 params_file=str(CONFIG)), '', {}).namespace == '/robot1'


@pytest.mark.parametrize('changes, match', [
    (dict(respawn='true', shutdown_on_exit='true'), 'respawn:=true and shutdown_on_exit'),
    (dict(respawn='yes'), 'respawn'),
    (dict(shutdown_on_exit='1'), 'shutdown_on_exit'),
    (dict(respawn_delay='soon'), 'respawn_delay'),
    (dict(respawn_delay='-1'), 'respawn_delay'),
    (dict(lifecycle='maybe'), 'lifecycle'),
    (dict(namespace='robot 1'), 'namespace'),
    (dict(rgb_info_topic='/a:=/b'), 'rgb_info_topic'),
    (dict(params_file='~/no/such.yaml'), 'params_file'),
])
def test_node_launch_rejects_bad_values_naming_the_argument(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        node_launch(_defaults(**changes, **({} if 'params_file' in changes
                                            else {'params_file': str(CONFIG)})),
                    str(tmp_path), {})


def test_node_launch_names_missing_values():
    values = _defaults(params_file=str(CONFIG))
    del values['respawn_delay']
    with pytest.raises(KeyError, match='respawn_delay'):
        node_launch(values, '', {})


def test_node_command_exact():
    assert node_command(params_file='/share/cfg.yaml', rgb_topic='/cam/color/image_raw',
                        aux_topic='/cam/depth/image_raw', checkpoint='/models/nyu.pt',
                        device='cpu', backend='openvino') == [
        '--ros-args', '--params-file', '/share/cfg.yaml',
        '-r', 'rgb/image:=/cam/color/image_raw', '-r', 'aux/image:=/cam/depth/image_raw',
        '-p', 'checkpoint:=/models/nyu.pt', '-p', 'device:=cpu', '-p', 'backend:=openvino']


def test_node_command_remaps_the_camera_infos():
    assert node_command(aux_topic='/cam/depth/image_raw',
                        rgb_info_topic='/cam/color/camera_info',
                        aux_info_topic='/cam/depth/camera_info') == [
        '--ros-args', '-r', 'aux/image:=/cam/depth/image_raw',
        '-r', 'rgb/camera_info:=/cam/color/camera_info',
        '-r', 'aux/camera_info:=/cam/depth/camera_info']


def test_node_command_leaves_out_empty_values():
    assert node_command() == ['--ros-args']
    assert node_command(checkpoint='m.pt') == ['--ros-args', '-p', 'checkpoint:=m.pt']
    assert node_command(aux_registration='homography') == [
        '--ros-args', '-p', 'aux_registration:=homography']


@pytest.mark.parametrize('kwargs', [dict(rgb_topic='a b'), dict(aux_info_topic='x:=y'),
                                    dict(device='cpu\n')])
def test_node_command_rejects_unparseable_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        node_command(**kwargs)


def test_small_parsers():
    assert parse_bool('lifecycle', 'True') and not parse_bool('lifecycle', ' false')
    with pytest.raises(ValueError, match='lifecycle'):
        parse_bool('lifecycle', 'yes')
    assert parse_seconds('respawn_delay', '0') == 0.0
    assert parse_seconds('respawn_delay', '2.5') == 2.5
    for bad in ('nan', 'inf', '-0.1', ''):
        with pytest.raises(ValueError, match='respawn_delay'):
            parse_seconds('respawn_delay', bad)
    assert parse_namespace('') is None
    assert parse_namespace('fleet/robot1') == 'fleet/robot1'
    assert exit_reason(1) == 'smmcl_segmentation exited with code 1 (shutdown_on_exit:=true)'
    assert not math.isnan(parse_seconds('respawn_delay', '1e3'))


def test_lifecycle_and_profile_arguments():
    assert executable(False) == 'segmentation_node'
    assert executable(True) == 'segmentation_lifecycle_node'
    assert Path(PROFILE).is_file()
    assert node_env(True, PROFILE, {}) == {'FASTRTPS_DEFAULT_PROFILES_FILE': PROFILE,
                                           'FASTDDS_DEFAULT_PROFILES_FILE': PROFILE}
    assert node_env(False, PROFILE, {}) == {}
    # A profile the user already chose is kept.
    assert node_env(True, PROFILE, {'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'}) == {}


def test_config_yaml_applies_in_any_namespace_and_matches_the_defaults():
    config = yaml.safe_load(CONFIG.read_text())
    # rcl applies a bare 'smmcl_segmentation:' only to /smmcl_segmentation.
    assert list(config) == [f'/**/{NODE_NAME}']
    params = config[f'/**/{NODE_NAME}']['ros__parameters']
    assert params == DEFAULTS


def test_checkpoint_parameter_expands_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path))
    params = validate(dict(DEFAULTS, checkpoint='~/models/x.pth'))
    assert params.checkpoint == str(tmp_path / 'models' / 'x.pth')
    assert validate(dict(DEFAULTS, checkpoint='/abs/x.pth')).checkpoint == '/abs/x.pth'


def test_readme_lists_every_argument_with_its_default():
    text = README.read_text()
    assert markdown_table() in text, \
        'README launch argument table is stale; paste smmcl_ros.launch_args.markdown_table()'
    for argument in ARGUMENTS:
        assert f'| `{argument.name}` |' in markdown_table()


def test_launch_file_is_a_thin_shell():
    tree = ast.parse(LAUNCH.read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for alias in n.names}
    assert {'ARGUMENTS', 'node_launch', 'exit_reason', 'DeclareLaunchArgument',
            'OpaqueFunction', 'Shutdown', 'Node', 'get_package_share_directory'} <= imported
    keywords = {k.arg for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, 'id', '') == 'Node' for k in n.keywords}
    # launch_ros's own namespace mechanism (composes with PushRosNamespace), respawn, on_exit.
    assert {'namespace', 'name', 'arguments', 'additional_env', 'respawn', 'respawn_delay',
            'on_exit'} <= keywords
    assert '__ns' not in LAUNCH.read_text()


def _share_prefix(tmp_path: Path) -> Path:
    """An install prefix with an ament index entry for smmcl_ros and its config/ folder."""
    prefix = tmp_path / 'install'
    index = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'smmcl_ros').write_text('')
    (prefix / 'share' / 'smmcl_ros').mkdir()
    (prefix / 'share' / 'smmcl_ros' / 'config').symlink_to(REPO / 'config')
    return prefix


def test_launch_description_with_the_real_launch_packages(tmp_path, monkeypatch):
    # ``launch.actions``: the repository's launch/ folder alone imports as a namespace package.
    actions = pytest.importorskip('launch.actions')
    launch_ros_actions = pytest.importorskip('launch_ros.actions')
    from launch import LaunchContext
    from launch.utilities import perform_substitutions

    spec = importlib.util.spec_from_file_location('segmentation_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    entities = description.entities
    # One DeclareLaunchArgument per argument, in order, then the OpaqueFunction with the node.
    assert len(entities) == len(ARGUMENTS) + 1
    declared, opaque = entities[:-1], entities[-1]
    assert all(isinstance(e, actions.DeclareLaunchArgument) for e in declared)
    assert isinstance(opaque, actions.OpaqueFunction)
    context = LaunchContext()
    assert [(e.name, perform_substitutions(context, e.default_value), e.description)
            for e in declared] == [(a.name, a.default, a.description) for a in ARGUMENTS]

    # Resolve it as `ros2 launch ... namespace:=robot1` included under PushRosNamespace('fleet').
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(_share_prefix(tmp_path)))
    context.launch_configurations.update(namespace='robot1', shutdown_on_exit='true')
    for action in declared:
        action.execute(context)  # the defaults of the arguments not given
    launch_ros_actions.PushRosNamespace('fleet').execute(context)
    nodes = opaque.execute(context)
    assert len(nodes) == 1 and isinstance(nodes[0], launch_ros_actions.Node)
    node = nodes[0]
    node._perform_substitutions(context)
    assert node.expanded_node_namespace == '/fleet/robot1'
    assert node.node_name == f'/fleet/robot1/{NODE_NAME}'
    expected = node_launch(dict(_defaults(), namespace='robot1', shutdown_on_exit='true'),
                           str(tmp_path / 'install' / 'share' / 'smmcl_ros'), os.environ)
    arguments = [perform_substitutions(context, part)
                 for part in node.cmd[1:1 + len(expected.arguments)]]
    assert arguments == expected.arguments
    assert '__ns:=' not in ' '.join(arguments)
