"""Cost of each ``aux_registration`` mode per 640x480 RGB frame, on real frames.

MSRS night thermal (uint8) and NYUv2 depth (uint16 mm), made unregistered as the tests do
(thermal: a 320x256 camera, 0.5x, 1.5 degree rotation; depth: an 800x600 camera 2.5 cm to the
side). Rounds are interleaved so that load on a shared machine hits every mode alike; medians
and the fastest round are printed in milliseconds. The depth z-buffer is also timed as a
sort-based variant (``np.lexsort`` + first of each pixel) next to the ``np.minimum.at`` one the
module uses::

    python benchmarks/bench_registration.py --rounds 20 --threads 1
"""

import argparse
from pathlib import Path
import sys
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]
DATA = REPO.parent / 'shared' / 'data'


def _sort_zbuffer(index: np.ndarray, z: np.ndarray, size: int) -> np.ndarray:
    order = np.lexsort((z, index))
    index, z = index[order], z[order]
    first = np.ones(len(index), bool)
    first[1:] = index[1:] != index[:-1]
    out = np.zeros(size, np.float32)
    out[index[first]] = z[first]
    return out


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1, help='OpenCV threads')
    args = parser.parse_args()

    import cv2
    from scipy.spatial.transform import Rotation

    from smmcl_core.data import registration as reg

    cv2.setNumThreads(args.threads)
    thermal = cv2.imread(str(DATA / 'msrs_night/thermal/00004N.png'), cv2.IMREAD_UNCHANGED)
    depth = cv2.imread(str(DATA / 'nyuv2_samples/Depth/0.png'), cv2.IMREAD_UNCHANGED)
    a = np.deg2rad(1.5)
    to_aux = np.array([[0.5 * np.cos(a), -0.5 * np.sin(a), -6.0],
                       [0.5 * np.sin(a), 0.5 * np.cos(a), 9.0], [0.0, 0.0, 1.0]])
    aux_t = cv2.warpPerspective(thermal, to_aux, (320, 256))
    aux_d = cv2.warpPerspective(depth, to_aux, (320, 256), flags=cv2.INTER_NEAREST)
    H = np.linalg.inv(to_aux)
    K = np.array([[518.86, 0.0, 324.58], [0.0, 519.47, 252.74], [0.0, 0.0, 1.0]])
    Kv = np.array([[580.0, 0.0, 399.5], [0.0, 580.0, 299.5], [0.0, 0.0, 1.0]])
    pose = reg.pose_matrix([0.025, -0.004, 0.003] + list(
        Rotation.from_euler('xyz', [0.8, -1.2, 0.5], degrees=True).as_quat()))
    virtual = cv2.resize(depth, (800, 600), interpolation=cv2.INTER_NEAREST)
    rng = np.random.default_rng(0)
    n = int((depth > 0).sum())
    index, z = rng.integers(0, 640 * 480, n), rng.random(n).astype(np.float32)
    shape = (480, 640)
    cases = {
        'auto (same size, as is)': lambda: reg.register(thermal, shape, 'thermal', 'auto'),
        'resize thermal 320x240 (linear)': lambda: reg.register(
            thermal[::2, ::2], shape, 'thermal', 'resize'),
        'resize depth 320x240 (nearest)': lambda: reg.register(
            depth[::2, ::2], shape, 'depth', 'resize'),
        'homography thermal 320x256 (linear)': lambda: reg.register(
            aux_t, shape, 'thermal', 'homography', homography=H),
        'homography depth 320x256 (nearest)': lambda: reg.register(
            aux_d, shape, 'depth', 'homography', homography=H),
        'depth 640x480 -> 640x480': lambda: reg.register(
            depth, shape, 'depth', 'depth', aux_K=K, rgb_K=K, aux_to_rgb=pose),
        'depth 800x600 -> 640x480': lambda: reg.register(
            virtual, shape, 'depth', 'depth', aux_K=Kv, rgb_K=K, aux_to_rgb=pose),
        f'z-buffer only, minimum.at ({n} px)': lambda: np.minimum.at(
            np.full(640 * 480, np.inf, np.float32), index, z),
        f'z-buffer only, lexsort ({n} px)': lambda: _sort_zbuffer(index, z, 640 * 480),
    }
    times = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm-up
    for _ in range(args.rounds):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    print(f'aux registration per 640x480 frame, {args.rounds} rounds, {args.threads} OpenCV '
          f'thread(s), numpy {np.__version__}, OpenCV {cv2.__version__}')
    for name, values in times.items():
        values = np.asarray(values) * 1000
        print(f'  {name:42s} median {np.median(values):7.2f} ms   fastest {values.min():7.2f} ms')


if __name__ == '__main__':
    main()
