r"""Launch the smmcl_segmentation node with config/segmentation.yaml.

A thin shell over :mod:`smmcl_ros.launch_args`, which holds the arguments (``ros2 launch
smmcl_ros segmentation.launch.py --show-args``, README "Launch arguments") and turns their
values into the node's command line. Example::

    ros2 launch smmcl_ros segmentation.launch.py checkpoint:=~/models/nyu.pth \
        rgb_topic:=/camera/color/image_raw aux_topic:=/camera/depth/image_rect_raw \
        namespace:=robot1 shutdown_on_exit:=true
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from smmcl_ros.launch_args import ARGUMENTS, exit_reason, node_launch, NODE_NAME, PACKAGE


def _shutdown(event, context):
    return [Shutdown(reason=exit_reason(event.returncode))]


def _node(context, *args, **kwargs):
    values = {argument.name: LaunchConfiguration(argument.name).perform(context)
              for argument in ARGUMENTS}
    spec = node_launch(values, get_package_share_directory(PACKAGE), os.environ)
    return [Node(package=PACKAGE, executable=spec.executable, name=NODE_NAME,
                 namespace=spec.namespace, output='screen', arguments=spec.arguments,
                 additional_env=spec.env, respawn=spec.respawn,
                 respawn_delay=spec.respawn_delay,
                 on_exit=_shutdown if spec.shutdown_on_exit else None)]


def generate_launch_description() -> LaunchDescription:
    """Declare the launch arguments and start the node once they are resolved."""
    declared = [DeclareLaunchArgument(argument.name, default_value=argument.default,
                                      description=argument.description)
                for argument in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_node)])
