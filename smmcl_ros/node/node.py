"""The plain segmentation node: configured and active from start-up until SIGINT.

Console scripts ``smmcl-segmentation-node`` / ``segmentation_node``; ``python -m smmcl_ros.node``.
"""

from rclpy.node import Node

from smmcl_ros.node.core import SegmentationCore
from smmcl_ros.node.shutdown import run_node, spin_until_shutdown
from smmcl_ros.topics import NODE_NAME


class SegmentationNode(SegmentationCore, Node):
    """The segmentation node, configured and active from construction until :meth:`close`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._init_core()
        self.configure()
        self.activate()

    def close(self) -> None:
        """Stop the inference thread (waits for the frame in progress) and the I/O."""
        self.deactivate()


def _teardown(node: SegmentationNode) -> None:
    node.close()
    node.destroy_node()


def main(args=None) -> int:
    """Run the node until SIGINT / shutdown; 0 on a clean exit, 1 on a configuration error."""
    return run_node(SegmentationNode, spin_until_shutdown, _teardown, NODE_NAME, args)


if __name__ == '__main__':
    raise SystemExit(main())
