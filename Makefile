# Two entry points on a fresh machine: `make demo` (the node on the bundled sample bag) and
# `make test` (the test suite). Both install what they need first.
PYTHON ?= python3
# CPU/CUDA wheels that work together on x86_64 with Python 3.11; override on your robot, e.g.
# make install TORCH_SPEC="torch torchvision" to keep the CUDA build you already have.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
ROS_SPEC ?= ros-jazzy-rclpy[fastrtps] ros-jazzy-sensor-msgs ros-jazzy-std-msgs \
	ros-jazzy-diagnostic-msgs
TEST_SPEC ?= colcon-common-extensions ros-jazzy-ament-package

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install --quiet $(TORCH_SPEC)
	$(PYTHON) -m pip install --quiet -e ".[train,export,test]"
	@$(PYTHON) -c 'import rclpy' 2>/dev/null || $(PYTHON) -m pip install --quiet $(ROS_SPEC)
	$(PYTHON) -m pip install --quiet $(TEST_SPEC)

demo: install
	$(PYTHON) -m smmcl_ros.demo --out demo_output

test: install
	$(PYTHON) -m pytest -q test

lint:
	$(PYTHON) -m flake8 smmcl_core smmcl_ros launch test benchmarks setup.py
