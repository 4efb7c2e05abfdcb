"""SMMCL core: network, losses, data and training engine (no ROS imports)."""

__version__ = '0.1.0'
