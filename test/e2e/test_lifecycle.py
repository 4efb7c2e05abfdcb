"""The managed node (smmcl_ros.node.lifecycle) driven through the standard lifecycle services.

The node runs in its own process with default parameters except the checkpoint; this process
calls ``~/change_state``, ``~/get_state`` and ``~/set_parameters`` as a lifecycle manager (Nav2,
``ros2 lifecycle set``) would, and plays camera and viewer.
"""

import pytest
from ros_harness import image_msg, NodeProcess, RosClient

pytestmark = pytest.mark.ros

NODE = '/smmcl_segmentation'


class Manager:
    """Lifecycle and parameter service clients for the node under test."""

    def __init__(self, client: RosClient) -> None:
        from lifecycle_msgs.srv import ChangeState, GetState
        from rcl_interfaces.srv import SetParameters

        self.client = client
        self.change = client.node.create_client(ChangeState, f'{NODE}/change_state')
        self.get = client.node.create_client(GetState, f'{NODE}/get_state')
        self.set = client.node.create_client(SetParameters, f'{NODE}/set_parameters')

    def _call(self, service, request, timeout=60.0):
        future = service.call_async(request)
        assert self.client.spin_until(future.done, timeout), f'no reply from {service.srv_name}'
        return future.result()

    def wait(self, node, timeout=60.0) -> None:
        ok = self.client.spin_until(
            lambda: (self.change.service_is_ready() and self.get.service_is_ready())
            or node.proc.poll() is not None, timeout)
        assert ok and node.proc.poll() is None, node.output()

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return self._call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self._call(self.change, request).success

    def set_string(self, name: str, value: str) -> bool:
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
        return self._call(self.set, request).results[0].successful


def _pair(client, rgb, depth, sec):
    client.rgb_pub.publish(image_msg(rgb, 'rgb8', sec))
    client.aux_pub.publish(image_msg(depth, '16UC1', sec))


def _stamps(client):
    return [m.header.stamp.sec for m in client.received['mask']]


def test_lifecycle_transitions(ros_env, tmp_path, checkpoint, frame):
    from lifecycle_msgs.msg import Transition

    rgb, depth = frame
    missing = tmp_path / 'missing.pt'
    node = NodeProcess(ros_env, {'checkpoint': missing}, tmp_path / 'node.log',
                       module='smmcl_ros.node.lifecycle')
    client = RosClient(camera=False)
    manager = Manager(client)
    try:
        manager.wait(node)
        assert manager.state() == 'unconfigured'
        assert client.node.count_publishers('segmentation/mask') == 0

        # A failing configure (missing checkpoint) returns to unconfigured; the process lives.
        assert not manager.transition(Transition.TRANSITION_CONFIGURE)
        assert manager.state() == 'unconfigured'
        assert node.proc.poll() is None
        assert 'configure failed' in node.output() and str(missing) in node.output()

        # Fix the parameter; configure reads it again and loads the model.
        assert manager.set_string('checkpoint', str(checkpoint))
        assert manager.transition(Transition.TRANSITION_CONFIGURE), node.output()
        assert manager.state() == 'inactive'

        # Inactive: a camera publishes, nothing is subscribed or published.
        client.add_camera(reliable=True)
        client.spin_for(1.0)
        assert client.rgb_pub.get_subscription_count() == 0
        assert client.node.count_publishers('segmentation/mask') == 0
        _pair(client, rgb, depth, 1)
        client.spin_for(1.0)
        assert _stamps(client) == []

        # Active: masks for the pairs.
        assert manager.transition(Transition.TRANSITION_ACTIVATE)
        assert manager.state() == 'active'
        assert client.spin_until(lambda: client.rgb_pub.get_subscription_count() > 0
                                 and client.aux_pub.get_subscription_count() > 0
                                 and client.node.count_publishers('segmentation/mask') > 0
                                 and bool(client.labels), 20.0)
        client.spin_for(0.3)
        for sec in (10, 11, 12):
            _pair(client, rgb, depth, sec)
            assert client.spin_until(lambda: sec in _stamps(client), 30.0), node.output()
        assert _stamps(client) == [10, 11, 12]

        # Deactivated: pairs go unanswered and the outputs are gone.
        assert manager.transition(Transition.TRANSITION_DEACTIVATE)
        assert manager.state() == 'inactive'
        for sec in (20, 21, 22):
            _pair(client, rgb, depth, sec)
            client.spin_for(0.3)
        client.spin_for(2.0)
        assert _stamps(client) == [10, 11, 12]
        assert client.node.count_publishers('segmentation/mask') == 0

        # Active again: served again.
        assert manager.transition(Transition.TRANSITION_ACTIVATE)
        assert client.spin_until(lambda: client.rgb_pub.get_subscription_count() > 0
                                 and client.aux_pub.get_subscription_count() > 0
                                 and client.node.count_publishers('segmentation/mask') > 0,
                                 20.0)
        client.spin_for(0.5)
        _pair(client, rgb, depth, 30)
        assert client.spin_until(lambda: 30 in _stamps(client), 30.0), node.output()

        # Deactivate, clean up (model freed), shut down: the process exits cleanly.
        assert manager.transition(Transition.TRANSITION_DEACTIVATE)
        assert manager.transition(Transition.TRANSITION_CLEANUP)
        assert manager.state() == 'unconfigured'
        assert 'model released' in node.output()
        assert manager.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert node.proc.wait(30) == 0, node.output()
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()
    assert 'Traceback' not in node.output()


def test_lifecycle_sigint_while_active(ros_env, tmp_path, checkpoint):
    from lifecycle_msgs.msg import Transition

    node = NodeProcess(ros_env, {'checkpoint': checkpoint}, tmp_path / 'node.log',
                       module='smmcl_ros.node.lifecycle')
    client = RosClient(camera=False)
    manager = Manager(client)
    try:
        manager.wait(node)
        assert manager.transition(Transition.TRANSITION_CONFIGURE), node.output()
        assert manager.transition(Transition.TRANSITION_ACTIVATE)
        assert manager.state() == 'active'
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()
    assert 'Traceback' not in node.output()
