r"""Launch the smmcl_segmentation node with config/segmentation.yaml.

Arguments: checkpoint (empty: the bundled demo model), rgb_topic, aux_topic, device,
backend (inference engine), namespace, lifecycle (true: the managed node, which starts
unconfigured), fastdds_profile (true: config/fastdds_large_images.xml for the node's Fast DDS
participant unless the environment already names a profile), aux_info_topic (the
depth camera's camera_info, for HHA checkpoints). Example::

    ros2 launch smmcl_ros segmentation.launch.py checkpoint:=/models/nyu.pt \
        rgb_topic:=/camera/color/image_raw aux_topic:=/camera/depth/image_rect_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from smmcl_ros.launch_args import (executable, FASTDDS_PROFILE, node_command, node_env,
                                   NODE_NAME, PACKAGE, parse_bool)

ARGUMENTS = (
    ('checkpoint', '', 'path to an smmcl checkpoint (.pt); empty: the bundled demo model'),
    ('rgb_topic', '/camera/color/image_raw', 'RGB image topic (remapped to rgb/image)'),
    ('aux_topic', '/camera/depth/image_rect_raw',
     'depth or thermal image topic (remapped to aux/image)'),
    ('device', 'auto', 'auto, cpu or cuda'),
    ('backend', 'auto', 'inference engine: auto, torch, openvino, onnxruntime or tensorrt'),
    ('namespace', '', 'node namespace'),
    ('lifecycle', 'false', 'true: the managed (lifecycle) node, started unconfigured'),
    ('fastdds_profile', 'true',
     'true: Fast DDS profile with a shared-memory segment for camera-sized images'),
    ('aux_info_topic', '/camera/depth/camera_info',
     'camera_info of aux_topic (remapped to aux/camera_info; read by HHA checkpoints only)'),
)


def _node(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    params_file = os.path.join(config, 'segmentation.yaml')
    command = node_command(params_file=params_file, namespace=values['namespace'],
                           rgb_topic=values['rgb_topic'], aux_topic=values['aux_topic'],
                           checkpoint=values['checkpoint'], device=values['device'],
                           backend=values['backend'],
                           aux_info_topic=values['aux_info_topic'])
    env = node_env(parse_bool('fastdds_profile', values['fastdds_profile']),
                   os.path.join(config, FASTDDS_PROFILE), os.environ)
    lifecycle = parse_bool('lifecycle', values['lifecycle'])
    return [Node(package=PACKAGE, executable=executable(lifecycle), name=NODE_NAME,
                 output='screen', arguments=command, additional_env=env)]


def generate_launch_description() -> LaunchDescription:
    """Declare the launch arguments and start the node once they are resolved."""
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, default, description in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_node)])
