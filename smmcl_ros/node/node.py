"""The plain segmentation node: configured and active from start-up until SIGINT.

Console scripts ``smmcl-segmentation-node`` / ``segmentation_node``; ``python -m smmcl_ros.node``.
"""

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from smmcl_ros.node.core import SegmentationCore
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


def main(args=None) -> int:
    """Run the node until SIGINT / shutdown; 0 on a clean exit, 1 on a configuration error."""
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        try:
            node = SegmentationNode()
        except (ValueError, OSError, KeyError, RuntimeError, ParameterException) as err:
            # Parameters (bad value or type), missing/corrupt checkpoint, unknown preset,
            # mismatched weights.
            rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {err}')
            code = 1
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    raise SystemExit(main())
