"""Conversions between numpy arrays and ROS messages (imports the message packages)."""
