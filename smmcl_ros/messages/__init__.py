"""numpy <-> ROS messages (``sensor_msgs/Image``, ``CameraInfo``, the labels JSON).

Shared by the node (rclpy messages) and the bag tools (rosbags messages, which have the same
fields). The modules import no message package at module level.
"""
