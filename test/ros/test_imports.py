"""Import contracts of smmcl_ros, each checked in a fresh interpreter.

- The pipeline is ROS-free: no rclpy, no message package, no torch at import time.
- ``import smmcl_ros.node`` (and the node modules) does not import torch: the model loads it on
  configure, so parameter errors and ``--help``-style failures stay fast.
"""

import json
import subprocess
import sys

import pytest

PIPELINE = ['smmcl_ros.topics', 'smmcl_ros.cli', 'smmcl_ros.pipeline.frame',
            'smmcl_ros.pipeline.stamps', 'smmcl_ros.pipeline.sync', 'smmcl_ros.pipeline.slot',
            'smmcl_ros.pipeline.assemble', 'smmcl_ros.pipeline.aux',
            'smmcl_ros.pipeline.intrinsics', 'smmcl_ros.pipeline.stats',
            'smmcl_ros.pipeline.relay', 'smmcl_ros.pipeline.outputs',
            'smmcl_ros.pipeline.process', 'smmcl_ros.messages.image_codec',
            'smmcl_ros.messages.labels', 'smmcl_ros.messages.camera_info']
NODE = ['smmcl_ros.node', 'smmcl_ros.node.node', 'smmcl_ros.node.lifecycle',
        'smmcl_ros.node.core', 'smmcl_ros.node.params']
FORBIDDEN_IN_PIPELINE = ('torch', 'rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs',
                         'rosbags')


def _loaded_after(modules, watched):
    code = (f'import importlib, json, sys\n'
            f'for m in {modules!r}: importlib.import_module(m)\n'
            f'print(json.dumps([w for w in {watched!r} if w in sys.modules]))\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pipeline_imports_no_ros_and_no_torch():
    assert _loaded_after(PIPELINE, FORBIDDEN_IN_PIPELINE) == []


@pytest.mark.parametrize('module', NODE)
def test_node_import_does_not_load_torch(module):
    assert _loaded_after([module], ('torch',)) == []
