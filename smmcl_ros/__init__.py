"""ROS 2 integration of SMMCL: segmentation node and rosbag tools."""
