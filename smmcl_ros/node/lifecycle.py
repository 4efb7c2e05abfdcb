"""``smmcl_segmentation`` as a managed (lifecycle) node, for Nav2-style bring-up.

Same node name, parameters and topics as :mod:`smmcl_ros.node.node`; it starts *unconfigured* and
follows the standard transitions (``lifecycle_msgs`` services ``~/change_state``,
``~/get_state``, ...):

- configure: read the parameters and load the model. A failure (bad parameter, missing or
  corrupt checkpoint) is logged and the node returns to *unconfigured*, ready to be configured
  again after the parameters are fixed; the process keeps running.
- activate: subscribe, publish, start the inference thread.
- deactivate: stop subscribing and publishing (the frame being segmented is not published).
- cleanup: free the model.
- shutdown (from any primary state): release everything and exit the process with code 0.

Executable ``segmentation_lifecycle_node`` / console script ``smmcl-segmentation-lifecycle-node``;
``ros2 launch smmcl_ros segmentation.launch.py lifecycle:=true``.
"""

import time
from typing import Callable

import rclpy
from rclpy.executors import Executor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from smmcl_ros.node.core import SegmentationCore
from smmcl_ros.node.shutdown import run_node, SIGNAL_POLL_S
from smmcl_ros.topics import NODE_NAME

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE


class SegmentationLifecycleNode(SegmentationCore, LifecycleNode):
    """The segmentation node driven by lifecycle transitions."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._init_core()
        self.finalized = False  # set by the shutdown transition; main() then exits

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model; on any error log it and stay unconfigured."""
        try:
            self.configure()
        except Exception as err:  # a failed configure must never kill the process
            self.cleanup()
            self.get_logger().error(f'configure failed: {type(err).__name__}: {err}')
            return FAILURE
        self.get_logger().info(
            f'configured: checkpoint {self.params.checkpoint}, {len(self.class_names)} '
            f'classes, aux={self.modality}, device={self.device}')
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe and publish."""
        try:
            self.activate()
        except Exception as err:
            self.deactivate()
            self.get_logger().error(f'activate failed: {type(err).__name__}: {err}')
            return FAILURE
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop subscribing and publishing."""
        self.deactivate()
        self.get_logger().info('deactivated')
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model."""
        self.cleanup()
        self.get_logger().info('cleaned up: model released')
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything; the process exits after answering the transition."""
        self.deactivate()
        self.cleanup()
        self.finalized = True
        self.get_logger().info(f'shutting down from {state.label}')
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured after a transition raised."""
        self.deactivate()
        self.cleanup()
        self.get_logger().error(f'error during a transition from {state.label}; unconfigured')
        return SUCCESS


def _serve(node: SegmentationLifecycleNode, executor: Executor,
           stopping: Callable[[], bool]) -> None:
    """Serve transitions until the shutdown transition; then let its reply reach the caller."""
    node.get_logger().info('unconfigured; waiting for lifecycle transitions')
    while not stopping() and rclpy.ok() and not node.finalized:
        executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    deadline = time.monotonic() + 0.5
    while not stopping() and rclpy.ok() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)


def _teardown(node: SegmentationLifecycleNode) -> None:
    node.deactivate()
    node.cleanup()
    node.destroy_node()


def main(args=None) -> int:
    """Serve lifecycle transitions until shutdown / SIGINT; 0 on a clean exit."""
    return run_node(SegmentationLifecycleNode, _serve, _teardown, NODE_NAME, args)


if __name__ == '__main__':
    raise SystemExit(main())
