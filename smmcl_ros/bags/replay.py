"""``smmcl-replay``: publish a bag's messages live with rclpy (no ``ros2 bag`` CLI needed).

Drives the segmentation node from a recording: every selected topic of the bag is published
on its topic (or a remapped one) at the recorded pace, scaled by ``--rate-scale``. Messages
are published as the recorded CDR bytes, so headers are exactly as recorded; ``--restamp``
shifts every header stamp by one offset per pass (now - first bag time), keeping the relative
stamps between topics (what the synchroniser pairs on) unchanged.

Reading uses :class:`smmcl_ros.bags.reader.BagReader`: sqlite3 or MCAP, damaged bags are played up
to the damage.
"""

import argparse
import importlib
from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from smmcl_ros import cli
from smmcl_ros.bags.errors import BagReadError, MessageDecodeError
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.pipeline.stamps import header_ns, set_stamp

PROG = 'smmcl-replay'

QOS_CHOICES = ('reliable', 'sensor_data')


class ReplayError(RuntimeError):
    """Bad replay arguments (unknown topic/type, no subscribers in time)."""


def parse_topics(items: Optional[Sequence[str]]) -> Tuple[Optional[List[str]], Dict[str, str]]:
    """``['/a', '/b:=/c']`` -> (``['/a', '/b']``, ``{'/b': '/c'}``); ``None`` = all topics."""
    if not items:
        return None, {}
    selected, remap = [], {}
    for item in items:
        old, sep, new = item.partition(':=')
        if not old or (sep and not new):
            raise ReplayError(f'bad --topics entry {item!r}; use TOPIC or OLD:=NEW')
        selected.append(old)
        if sep:
            remap[old] = new
    return selected, remap


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``.

    Raises:
        ReplayError: The type's Python package is not installed.
    """
    package, _, name = msgtype.replace('/msg/', '/').partition('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError) as exc:
        raise ReplayError(f'message type {msgtype!r} is not available to rclpy: {exc}') from exc


def make_qos(name: str) -> Any:
    """``reliable`` (keep last 10, volatile) or ``sensor_data`` (best effort) QoS."""
    from rclpy.qos import qos_profile_sensor_data

    from smmcl_ros.node.qos import reliable
    if name == 'sensor_data':
        return qos_profile_sensor_data
    if name != 'reliable':
        raise ReplayError(f'unknown qos {name!r}; valid: {", ".join(QOS_CHOICES)}')
    return reliable(10)


def _restamped(reader: BagReader, message: Any, offset_ns: int) -> bytes:
    """CDR bytes of ``message`` with its header stamp shifted by ``offset_ns``."""
    msg = reader.deserialize(message)
    header = getattr(msg, 'header', None)
    if header is None:
        return message.raw
    set_stamp(header.stamp, max(header_ns(msg) + offset_ns, 0))
    return bytes(reader.typestore.serialize_cdr(msg, message.msgtype))


class Replayer:
    """Publishes a bag's messages through an rclpy node.

    Args:
        node: rclpy node owning the publishers.
        reader: Open :class:`BagReader`.
        topics: Bag topics to publish (``None`` = all).
        remap: ``{bag topic: published topic}``.
        qos: ``reliable`` or ``sensor_data``.
        rate_scale: Playback speed factor (2 = twice as fast); must be > 0.
        restamp: Shift header stamps to the current time.
    """

    def __init__(self, node: Any, reader: BagReader, topics: Optional[Sequence[str]] = None,
                 remap: Optional[Dict[str, str]] = None, qos: str = 'reliable',
                 rate_scale: float = 1.0, restamp: bool = False) -> None:
        if not rate_scale > 0:
            raise ReplayError(f'--rate-scale must be > 0, got {rate_scale}')
        self.node, self.reader = node, reader
        self.topics = list(reader.topics) if topics is None else list(topics)
        try:
            reader.require_topics(self.topics)
        except Exception as exc:  # noqa: B902 - UnknownTopicError lists the bag's topics
            raise ReplayError(str(exc)) from exc
        self.remap = dict(remap or {})
        unknown = sorted(set(self.remap) - set(self.topics))
        if unknown:
            raise ReplayError(f'remapped topic(s) {unknown} are not replayed')
        self.rate_scale = float(rate_scale)
        self.restamp = bool(restamp)
        profile = make_qos(qos)
        self.publishers = {
            topic: node.create_publisher(message_class(reader.topics[topic]),
                                         self.remap.get(topic, topic), profile)
            for topic in self.topics}
        self.published: Dict[str, int] = {topic: 0 for topic in self.topics}

    def wait_for_subscribers(self, count: int, timeout: float) -> None:
        """Block until every publisher has ``count`` subscribers.

        Raises:
            ReplayError: Not reached within ``timeout`` seconds (names the topics).
        """
        deadline = time.monotonic() + timeout
        while True:
            missing = [self.remap.get(t, t) for t, pub in self.publishers.items()
                       if pub.get_subscription_count() < count]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise ReplayError(f'no {count} subscriber(s) on {missing} after {timeout} s')
            time.sleep(0.05)

    def play_once(self) -> Optional[str]:
        """Publish the bag once at the scaled recorded pace.

        Returns:
            ``None``, or the error that stopped playback early (a damaged bag).
        """
        start_wall = time.monotonic()
        first: Optional[int] = None
        offset = 0
        try:
            for message in self.reader.messages(self.topics):
                if first is None:
                    first = message.timestamp
                    offset = time.time_ns() - first
                delay = start_wall + (message.timestamp - first) / 1e9 / self.rate_scale \
                    - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                data = message.raw
                if self.restamp:
                    try:
                        data = _restamped(self.reader, message, offset)
                    except MessageDecodeError as err:
                        self.node.get_logger().warning(f'not restamped: {err}')
                self.publishers[message.topic].publish(data)
                self.published[message.topic] += 1
        except BagReadError as err:
            return str(err)
        return None


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-replay``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('bag', type=Path, help='rosbag2 directory, .db3 or .mcap file')
    parser.add_argument('--topics', nargs='+', default=None, metavar='TOPIC[:=NEW]',
                        help='topics to publish (default all), optionally remapped')
    parser.add_argument('--rate-scale', type=float, default=1.0,
                        help='playback speed factor (2 = twice as fast)')
    parser.add_argument('--qos', choices=QOS_CHOICES, default='reliable')
    parser.add_argument('--loop', action='store_true', help='play again until interrupted')
    parser.add_argument('--restamp', action='store_true',
                        help='shift header stamps to now (relative offsets kept)')
    parser.add_argument('--wait-subscribers', type=int, default=0, metavar='N',
                        help='wait until every topic has N subscribers before playing')
    parser.add_argument('--wait-timeout', type=float, default=30.0,
                        help='seconds to wait for --wait-subscribers')
    parser.add_argument('--linger', type=float, default=0.5,
                        help='seconds to keep the publishers alive after the last message')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: 0 played, 1 damaged bag (played up to the damage), 2 bad arguments."""
    args = build_parser().parse_args(argv)
    try:
        selected, remap = parse_topics(args.topics)
        reader = BagReader(args.bag)
    except (OSError, ReplayError, RuntimeError) as err:
        return cli.fail(PROG, err)
    import rclpy  # only once the arguments are known to be good

    from smmcl_ros.node.shutdown import init_rclpy

    init_rclpy()
    node = rclpy.create_node('smmcl_bag_replay')
    code = 0
    try:
        replayer = Replayer(node, reader, selected, remap, args.qos, args.rate_scale,
                            args.restamp)
        if args.wait_subscribers > 0:
            replayer.wait_for_subscribers(args.wait_subscribers, args.wait_timeout)
        while True:
            error = replayer.play_once()
            if error is not None:
                code = cli.fail(PROG, error, cli.FAILED)
                break
            if not args.loop:
                break
        time.sleep(max(args.linger, 0.0))  # let reliable writers deliver the tail
        total = ', '.join(f'{t}: {n}' for t, n in replayer.published.items())
        cli.status(PROG, f'published {total}')
    except ReplayError as err:
        code = cli.fail(PROG, err)
    except KeyboardInterrupt:
        code = 0
    finally:
        reader.close()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
