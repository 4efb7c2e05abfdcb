"""Build script for the smmcl_ros ament_python package (also pip-installable)."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'smmcl_ros'


# Extras share these (pip merges an extra's requirements with the others asked for).
TORCH = ['torch>=2.1', 'torchvision>=0.16', 'timm>=0.9.12']
ONNX = ['onnx>=1.14']


def _console(name: str, target: str) -> str:
    return f'{name} = {target}'


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'benchmarks']),
    package_data={
        'smmcl_ros.demo': ['assets/*', 'assets/**/*'],
    },
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'),
         glob('config/*.yaml') + glob('config/*.xml') + glob('config/*.rviz')),
        (os.path.join('share', package_name, 'training', 'configs'),
         glob('training/configs/*.yaml')),
    ],
    python_requires='>=3.10',
    # The runtime: the node, the bag tools and the numpy inference path. No torch: an exported
    # graph (or a cached export) runs on an engine extra alone, e.g.
    # pip install 'smmcl_ros[openvino]'. torch comes with the torch / export / train extras.
    install_requires=[
        'setuptools',
        'numpy>=1.23',
        'pyyaml>=6.0',
        'opencv-python-headless>=4.7',
        'Pillow>=9.0',  # palette (indexed) label PNGs
        'tqdm>=4.60',
        'rosbags>=0.10',
    ],
    extras_require={
        # backend 'torch' and everything that builds the network (timm: MSCAN layers, ResNet).
        'torch': TORCH,
        'train': TORCH + ['tensorboard>=2.12', 'matplotlib>=3.6', 'scikit-learn>=1.2'],
        # smmcl-export, and the engines' first use of a .pth (exported once, then cached).
        'export': TORCH + ONNX + ['onnxruntime>=1.16'],
        # Inference engines (smmcl_core.engines) on an exported graph: no torch, and no onnx
        # package (engines.onnx_props reads the graph's metadata itself).
        'openvino': ['openvino>=2024.0'],
        'onnxruntime': ['onnxruntime>=1.16'],
        'tensorrt': TORCH + ONNX + ['tensorrt>=10.0'],  # binds CUDA torch tensors
        'ros': [
            'ros-jazzy-rclpy[fastrtps]',
            'ros-jazzy-sensor-msgs',
            'ros-jazzy-std-msgs',
            'ros-jazzy-diagnostic-msgs',
            'ros-jazzy-lifecycle-msgs',
        ],
        'test': ['pytest>=7', 'pytest-timeout', 'flake8', 'flake8-quotes',
                 'flake8-import-order', 'flake8-docstrings'],
    },
    zip_safe=False,
    maintainer='smmcl maintainers',
    maintainer_email='maintainers@smmcl.invalid',
    description='SMMCL dark-scene RGB-D / RGB-T semantic segmentation: network and ROS 2 node',
    license='MIT',
    entry_points={
        'console_scripts': [
            _console('smmcl-train', 'smmcl_core.cli.train:main'),
            _console('smmcl-evaluate', 'smmcl_core.cli.evaluate:main'),
            _console('smmcl-tsne', 'smmcl_core.cli.tsne:main'),
            _console('smmcl-export', 'smmcl_core.cli.export:main'),
            _console('smmcl-check-data', 'smmcl_core.cli.check_data:main'),
            _console('smmcl-make-hha', 'smmcl_core.cli.make_hha:main'),
            _console('smmcl-calibrate-aux', 'smmcl_core.cli.calibrate_aux:main'),
            _console('smmcl-segmentation-node', 'smmcl_ros.node.node:main'),
            _console('segmentation_node', 'smmcl_ros.node.node:main'),
            _console('smmcl-segmentation-lifecycle-node', 'smmcl_ros.node.lifecycle:main'),
            _console('segmentation_lifecycle_node', 'smmcl_ros.node.lifecycle:main'),
            _console('smmcl-bag-eval', 'smmcl_ros.bags.eval_cli:main'),
            _console('bag_eval', 'smmcl_ros.bags.eval_cli:main'),
            _console('smmcl-make-bag', 'smmcl_ros.bags.make_bag:main'),
            _console('make_bag', 'smmcl_ros.bags.make_bag:main'),
            _console('smmcl-replay', 'smmcl_ros.bags.replay:main'),
            _console('bag_replay', 'smmcl_ros.bags.replay:main'),
            _console('smmcl-demo', 'smmcl_ros.demo.demo:main'),
            _console('smmcl-import-release', 'smmcl_core.cli.import_release:main'),
            _console('import_release', 'smmcl_core.cli.import_release:main'),
        ],
    },
)
