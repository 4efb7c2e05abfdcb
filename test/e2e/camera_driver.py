"""A camera driver in its own process for the ROS tests: real 640x480 NYUv2 RGB-D pairs.

Not a test module. Waits until the node subscribes to both topics, then publishes ``--count``
pairs (``rgb8`` + ``16UC1``, stamped ``--first``, ``--first + 1``, ...) with ``--qos``
(``reliable`` or ``best_effort``), and exits 0 (2 if nobody subscribed within ``--wait``
seconds). Pairs leave every ``--period`` seconds; with ``--follow`` the next pair leaves as soon
as the node's overlay for the previous one arrived, and ``--period`` is only the longest wait
(for a pair that a best-effort transport lost), so a loaded machine never makes the node drop a
pair for a busy model::

    python test/e2e/camera_driver.py --qos best_effort --count 10 --period 1.0 --first 100

The pair is NYUv2 frame 0 from ``../shared/data``; ``--synthetic`` sends a SYNTHETIC 640x480
RGB-D scene instead (``smmcl_core.data.synthetic``), for tests whose claim does not depend on
the image content when the shared data is not there.
"""

import argparse
from pathlib import Path
import sys
import time

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    """Publish the pairs; the exit code says whether the node was found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--count', type=int, default=10)
    parser.add_argument('--period', type=float, default=1.0)
    parser.add_argument('--first', type=int, default=100)
    parser.add_argument('--wait', type=float, default=60.0)
    parser.add_argument('--synthetic', action='store_true',
                        help='a synthetic 640x480 RGB-D scene instead of the NYUv2 frame')
    parser.add_argument('--follow', action='store_true',
                        help='send the next pair once the overlay of the previous one arrived')
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    import rclpy
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from smmcl_core.data.io import read_aux, read_rgb
    from smmcl_ros.messages.image_codec import fill_image

    if args.synthetic:
        from smmcl_core.data.synthetic import render_scene

        rgb, depth = render_scene(0, 480, 640, 'depth')[:2]
    else:
        folder = REPO.parent / 'shared' / 'data' / 'nyuv2_samples'
        rgb = read_rgb(folder / 'RGB' / '0.png')
        depth = read_aux(folder / 'Depth' / '0.png', 'depth')
    rclpy.init()
    node = rclpy.create_node('camera_driver')
    qos = (QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
           if args.qos == 'reliable' else qos_profile_sensor_data)
    rgb_pub = node.create_publisher(Image, 'rgb/image', qos)
    aux_pub = node.create_publisher(Image, 'aux/image', qos)
    done = set()
    node.create_subscription(Image, 'segmentation/overlay',
                             lambda msg: done.add(msg.header.stamp.sec), 10)
    try:
        deadline = time.monotonic() + args.wait
        while rgb_pub.get_subscription_count() == 0 or aux_pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return 2
            rclpy.spin_once(node, timeout_sec=0.05)
        time.sleep(0.3)
        start = time.monotonic()
        for k in range(args.count):
            for pub, array, encoding in ((rgb_pub, rgb, 'rgb8'), (aux_pub, depth, '16UC1')):
                msg = fill_image(Image(), array, encoding, None)
                msg.header.stamp.sec, msg.header.frame_id = args.first + k, 'camera'
                pub.publish(msg)
            until = (time.monotonic() if args.follow else start + k * args.period) + args.period
            while time.monotonic() < until and not (args.follow and args.first + k in done):
                rclpy.spin_once(node, timeout_sec=max(0.0, min(0.05, until - time.monotonic())))
        time.sleep(1.0)  # let the last frames leave before the participant goes
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    raise SystemExit(main())
