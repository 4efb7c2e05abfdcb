"""Small helpers shared by smmcl_core and smmcl_ros (no torch, no ROS imports)."""
