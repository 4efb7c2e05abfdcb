"""The launch file's structure (parsed with ast: launch is not installed here) and node_command."""

import ast
from pathlib import Path

import pytest
import yaml

from smmcl_ros.launch_args import (executable, FASTDDS_PROFILE, node_command, node_env,
                                   parse_bool)
from smmcl_ros.node.params import DEFAULTS

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch' / 'segmentation.launch.py'
CONFIG = REPO / 'config' / 'segmentation.yaml'


def test_node_command_exact():
    assert node_command(params_file='/share/cfg.yaml', namespace='robot',
                        rgb_topic='/cam/color/image_raw', aux_topic='/cam/depth/image_raw',
                        checkpoint='/models/nyu.pt', device='cpu', backend='openvino') == [
        '--ros-args', '--params-file', '/share/cfg.yaml', '-r', '__ns:=/robot',
        '-r', 'rgb/image:=/cam/color/image_raw', '-r', 'aux/image:=/cam/depth/image_raw',
        '-p', 'checkpoint:=/models/nyu.pt', '-p', 'device:=cpu', '-p', 'backend:=openvino']


def test_node_command_remaps_the_depth_camera_info():
    assert node_command(aux_topic='/cam/depth/image_raw',
                        aux_info_topic='/cam/depth/camera_info') == [
        '--ros-args', '-r', 'aux/image:=/cam/depth/image_raw',
        '-r', 'aux/camera_info:=/cam/depth/camera_info']


def test_node_command_leaves_out_empty_values():
    assert node_command() == ['--ros-args']
    assert node_command(namespace='/a/b', checkpoint='m.pt') == [
        '--ros-args', '-r', '__ns:=/a/b', '-p', 'checkpoint:=m.pt']


@pytest.mark.parametrize('kwargs', [dict(rgb_topic='a b'), dict(namespace='x:=y'),
                                    dict(device='cpu\n')])
def test_node_command_rejects_unparseable_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        node_command(**kwargs)


def test_launch_file_structure():
    tree = ast.parse(LAUNCH.read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    arguments = next(n for n in tree.body if isinstance(n, ast.Assign)
                     and getattr(n.targets[0], 'id', '') == 'ARGUMENTS')
    declared = [elt.elts[0].value for elt in arguments.value.elts]
    assert declared == ['checkpoint', 'rgb_topic', 'aux_topic', 'device', 'backend',
                        'namespace', 'lifecycle', 'fastdds_profile',
                        'aux_info_topic']
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {'DeclareLaunchArgument', 'node_command', 'get_package_share_directory',
            'LaunchConfiguration', 'OpaqueFunction', 'executable', 'node_env',
            'FASTDDS_PROFILE'} <= names
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert 'segmentation.yaml' in strings and 'config' in strings
    imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for alias in n.names}
    assert {'node_command', 'DeclareLaunchArgument', 'Node'} <= imported


def test_launch_description_builds_when_launch_is_installed():
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    import importlib.util

    spec = importlib.util.spec_from_file_location('segmentation_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert len(description.entities) == 9


def test_config_yaml_matches_parameter_defaults():
    params = yaml.safe_load(CONFIG.read_text())['smmcl_segmentation']['ros__parameters']
    assert params == DEFAULTS


def test_lifecycle_and_profile_arguments():
    assert executable(False) == 'segmentation_node'
    assert executable(True) == 'segmentation_lifecycle_node'
    assert parse_bool('lifecycle', 'True') and not parse_bool('lifecycle', 'false')
    with pytest.raises(ValueError, match='lifecycle'):
        parse_bool('lifecycle', 'yes')
    profile = str(REPO / 'config' / FASTDDS_PROFILE)
    assert Path(profile).is_file()
    assert node_env(True, profile, {}) == {'FASTRTPS_DEFAULT_PROFILES_FILE': profile,
                                           'FASTDDS_DEFAULT_PROFILES_FILE': profile}
    assert node_env(False, profile, {}) == {}
    # A profile the user already chose is kept.
    assert node_env(True, profile, {'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'}) == {}
