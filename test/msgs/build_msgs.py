"""Build the test-only message packages (:data:`PACKAGES`) once each, into a cache.

``vision_msgs`` (LabelInfo, VisionClass) and ``tf2_msgs`` (TFMessage, on
``geometry_msgs/TransformStamped`` of the PyPI ``ros-jazzy-geometry-msgs`` wheel) are not on
PyPI; their definitions under ``test/msgs/<package>/msg`` are built here with colcon and the
PyPI ``ros-jazzy-*`` generator wheels (the Makefile's ``TEST_SPEC``), so LabelInfo and
``/tf_static`` go over DDS for real in the tests. A build (about 15 s) lands in
``<cache>/<package>-<digest>/install``; the digest covers the package sources and the
interpreter, so a changed ``.msg`` rebuilds and concurrent test processes wait on a lock.

Script use: ``python3 test/msgs/build_msgs.py [--cache DIR] [PACKAGE ...]`` builds and prints
the install prefixes (exit 2 with the reason when build tools are missing). Tests use the
session fixtures of ``msgs_fixture`` (``vision_msgs``, ``tf2_msgs``) over :func:`build` and
:meth:`Install.activate`.
"""

import argparse
import ctypes
import fcntl
import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
PACKAGES = ('vision_msgs', 'tf2_msgs')
DEFAULT_CACHE = Path(os.environ.get('SMMCL_MSGS_CACHE',
                                    Path(tempfile.gettempdir()) / 'smmcl_test_msgs'))
# CMake packages the build needs from the ros-jazzy-* wheels (installed under sys.prefix).
CMAKE_PACKAGES = ('ament_cmake', 'ament_cmake_ros', 'rosidl_default_generators',
                  'rosidl_generator_py', 'python_cmake_module', 'std_msgs', 'geometry_msgs')
# Libraries of the built package the Python extension needs, preloaded in-process.
LIBRARIES = ('rosidl_generator_c', 'rosidl_typesupport_c', 'rosidl_typesupport_introspection_c',
             'rosidl_typesupport_fastrtps_c', 'rosidl_generator_py')
BUILD_TIMEOUT_S = 600


class MsgsUnavailable(RuntimeError):
    """The build tools are not installed (the reason says which); tests skip on it."""


class MsgsBuildError(RuntimeError):
    """The tools are there but the build failed (the message holds the log tail)."""


def ros_prefix() -> Path:
    """Install prefix of the PyPI ROS wheels (their ``share/`` holds the CMake packages)."""
    return Path(sys.prefix)


def missing_tools() -> List[str]:
    """What the build needs and this machine lacks (empty = can build)."""
    missing = [f'{tool} (executable)' for tool in ('colcon', 'cmake') if not shutil.which(tool)]
    if not (shutil.which('c++') or shutil.which('g++') or shutil.which('clang++')):
        missing.append('a C++ compiler')
    share = ros_prefix() / 'share'
    for name in CMAKE_PACKAGES:
        if not (share / name / 'cmake').is_dir():
            missing.append(f'{name} (CMake package in {share})')
    return missing


def _sources(package: str) -> Path:
    if package not in PACKAGES:
        raise ValueError(f'unknown test message package {package!r}; valid: '
                         f'{", ".join(PACKAGES)}')
    return HERE / package


def digest(package: str = 'vision_msgs') -> str:
    """Hash of the package's sources, this build script and the interpreter."""
    sha = hashlib.sha256()
    for path in sorted(_sources(package).rglob('*')) + [Path(__file__).resolve()]:
        if path.is_file():
            sha.update(str(path.relative_to(HERE)).encode() + b'\0' + path.read_bytes())
    sha.update(f'{sys.executable} {sys.version}'.encode())
    return sha.hexdigest()[:16]


class Install:
    """A finished build: ``prefix`` is colcon's install folder of ``package``."""

    def __init__(self, prefix: Path, package: str = 'vision_msgs') -> None:
        self.prefix = prefix
        self.package = package
        version = f'python{sys.version_info.major}.{sys.version_info.minor}'
        self.lib_dir = prefix / 'lib'
        self.python_dir = self.lib_dir / version / 'site-packages'

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """``base`` (default ``os.environ``) extended so a new process imports the package."""
        env = dict(os.environ if base is None else base)
        for name, path in (('LD_LIBRARY_PATH', self.lib_dir), ('PYTHONPATH', self.python_dir),
                           ('AMENT_PREFIX_PATH', self.prefix)):
            parts = [p for p in env.get(name, '').split(os.pathsep) if p]
            env[name] = os.pathsep.join([str(path)] + [p for p in parts if p != str(path)])
        return env

    def activate(self) -> None:
        """Make the package importable in this process.

        The dynamic loader reads ``LD_LIBRARY_PATH`` only at process start, so the package's
        libraries are preloaded by path (the extension then finds them by soname); the
        variable is still extended because rosidl looks typesupport libraries up in it.
        """
        os.environ.update({k: v for k, v in self.env().items()
                           if k in ('LD_LIBRARY_PATH', 'AMENT_PREFIX_PATH')})
        for name in LIBRARIES:
            ctypes.CDLL(str(self.lib_dir / f'lib{self.package}__{name}.so'),
                        mode=ctypes.RTLD_GLOBAL)
        if str(self.python_dir) not in sys.path:
            sys.path.insert(0, str(self.python_dir))


def build(cache: Path = DEFAULT_CACHE, package: str = 'vision_msgs') -> Install:
    """The cached build of ``package`` (one of :data:`PACKAGES`), building it first if needed.

    Raises:
        MsgsUnavailable: Build tools missing (names them).
        MsgsBuildError: The build failed (with the end of its log).
    """
    missing = missing_tools()
    if missing:
        raise MsgsUnavailable(f'cannot build the test {package} package: missing '
                              + ', '.join(missing) + ' (the Makefile TEST_SPEC installs them)')
    root = cache / f'{package}-{digest(package)}'
    install = root / 'install'
    done = root / 'complete'
    root.mkdir(parents=True, exist_ok=True)
    with open(root / 'lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if not done.exists():
            _colcon_build(root, package)
            done.write_text('ok\n')
    return Install(install / package, package)


def _colcon_build(root: Path, package: str) -> None:
    for sub in ('build', 'install', 'log'):
        shutil.rmtree(root / sub, ignore_errors=True)
    prefix = str(ros_prefix())
    env = dict(os.environ)
    for name in ('AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH'):
        parts = [p for p in env.get(name, '').split(os.pathsep) if p]
        env[name] = os.pathsep.join([prefix] + [p for p in parts if p != prefix])
    args = ['colcon', '--log-base', str(root / 'log'), 'build', '--base-paths', str(HERE),
            '--build-base', str(root / 'build'), '--install-base', str(root / 'install'),
            '--packages-select', package, '--event-handlers', 'console_direct+', '--cmake-args',
            f'-DPython3_EXECUTABLE={sys.executable}']
    try:
        result = subprocess.run(args, cwd=root, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise MsgsBuildError(f'colcon build of {HERE / package} took over {BUILD_TIMEOUT_S} s'
                             ) from err
    (root / 'build.log').write_text(result.stdout)
    if result.returncode != 0:
        tail = '\n'.join(result.stdout.splitlines()[-40:])
        raise MsgsBuildError(f'colcon build of {HERE / package} failed ({result.returncode}); log '
                             f'{root / "build.log"}:\n{tail}')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--cache', type=Path, default=DEFAULT_CACHE, help='cache folder')
    parser.add_argument('packages', nargs='*', default=list(PACKAGES), choices=PACKAGES,
                        metavar='PACKAGE', help=f'default: {" ".join(PACKAGES)}')
    args = parser.parse_args(argv)
    try:
        for package in args.packages:
            print(build(args.cache, package).prefix)
    except MsgsUnavailable as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
