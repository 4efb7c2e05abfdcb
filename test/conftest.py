"""Shared pytest fixtures: paths to real sample data and an isolated ROS 2 environment."""

import itertools
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'

# Each ROS test gets its own DDS domain so concurrent tests never see each other's topics.
_DOMAIN_IDS = itertools.count(start=40 + (os.getpid() % 20) * 2)


@pytest.fixture
def shared_data() -> Path:
    """The real sample frames in ../shared/data (present for developers and CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real sample data not found at {SHARED_DATA}')
    return SHARED_DATA


@pytest.fixture
def ros_env(monkeypatch) -> dict:
    """Environment for rclpy processes: loopback-only discovery and a per-test domain id.

    The variables are also set in this process, so rclpy used in the test itself joins the
    same domain as the node processes it starts with ``env=ros_env``.
    """
    domain = str(next(_DOMAIN_IDS) % 200 + 1)
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('ROS_DOMAIN_ID', domain)
    monkeypatch.setenv('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env = dict(os.environ)
    return env
