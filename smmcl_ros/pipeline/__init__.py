"""The ROS-free frame pipeline: what the node, the lifecycle node and the bag tools share.

Works on numpy arrays, int nanosecond stamps and opaque headers; no rclpy or message-package
import. The stages, in order (see docs/DESIGN.md):

``FrameAssembler`` (stamp guard + synchroniser) -> ``Frame`` -> ``LatestFrameWorker`` (node
only) -> ``FrameProcessor``: ``AuxPreparer`` -> ``Segmenter.predict`` -> ``Outputs``.
"""
