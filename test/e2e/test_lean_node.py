"""The node on an exported graph with an engine: no torch in the process (issue 20).

The node runs ``python -m no_torch smmcl_ros.node`` (``test/no_torch.py``: torch cannot be
imported, as on a ``pip install 'smmcl_ros[openvino]'`` robot) with the bundled demo model
exported to ONNX and ``backend`` openvino / onnxruntime, on real MSRS night pairs; its masks
must agree with ``backend: torch`` in this process as the engine tests require.
"""

from pathlib import Path

import numpy as np
import pytest
from ros_harness import image_msg, NodeProcess, RosClient

from smmcl_core.engines import available
from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

pytestmark = pytest.mark.ros
TEST_DIR = Path(__file__).resolve().parents[1]
CPU_ENGINES = [name for name in ('openvino', 'onnxruntime') if available(name)]


@pytest.fixture(scope='module')
def onnx_file(tmp_path_factory) -> Path:
    from smmcl_core.cli import export as export_cli

    path = tmp_path_factory.mktemp('lean_node') / 'demo.onnx'
    assert export_cli.main(['--checkpoint', str(DEMO_CHECKPOINT), '--format', 'onnx',
                            '--out', str(path), '--dynamic-hw']) == 0
    return path


@pytest.fixture(scope='module')
def pairs():
    from conftest import msrs_night_pairs

    return msrs_night_pairs(4, 2)


@pytest.mark.skipif(not CPU_ENGINES, reason='no CPU engine installed')
@pytest.mark.parametrize('backend', CPU_ENGINES)
def test_node_runs_an_exported_graph_without_torch(ros_env, tmp_path, onnx_file, pairs,
                                                   backend):
    from smmcl_core.segmenter import Segmenter

    env = dict(ros_env, PYTHONPATH=str(TEST_DIR), SMMCL_CACHE_DIR=str(tmp_path / 'cache'))
    params = dict(checkpoint=str(onnx_file), backend=backend, device='auto', qos='reliable')
    node = NodeProcess(env, params, tmp_path / 'node.log', module='no_torch',
                       module_args=['smmcl_ros.node'])
    client = RosClient()
    try:
        client.wait_ready(node)
        for i, (rgb, thermal) in enumerate(pairs):
            client.rgb_pub.publish(image_msg(rgb, 'rgb8', 20 + i))
            client.aux_pub.publish(image_msg(thermal, 'mono8', 20 + i))
            assert client.spin_until(lambda: len(client.received['mask']) > i, 60.0), \
                node.output()
    finally:
        client.close()
        code = node.stop()
    log = node.output()
    assert code == 0, log
    assert 'ready' in log and backend in log and 'blocked by test/no_torch.py' not in log
    reference = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu')
    for msg, (rgb, thermal) in zip(client.received['mask'], pairs):
        mask = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)
        assert np.mean(mask == reference.predict(rgb, thermal)) >= 0.995
