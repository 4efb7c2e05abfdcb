"""ROS-free frame pipeline of the segmentation node (numpy arrays, int stamps)."""
