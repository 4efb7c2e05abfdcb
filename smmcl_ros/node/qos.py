"""QoS of the segmentation node: inputs that follow their publishers, outputs any viewer matches.

Inputs (``qos`` parameter):

- ``auto`` (default), as ``ros2 topic echo`` and rosbag2 choose: subscribe reliable when every
  publisher currently on the topic offers reliable (and while there is none yet, so a reliable
  camera started after the node matches at once), best effort as soon as one publisher is best
  effort (a reliable subscription never matches a best-effort publisher). The node re-decides
  whenever the publishers change, by re-creating the subscription; the callback, and so the
  synchroniser's queued messages, are untouched.
- ``sensor_data`` (best effort) and ``reliable``: fixed.

Outputs (``output_qos``): ``reliable`` by default (REP-2003: both reliable and best-effort
subscribers such as rviz match it) with a keep-last depth of :data:`OUTPUT_DEPTH`, so a slow
viewer never queues old masks; or ``sensor_data``.
"""

from typing import Any, Callable, Iterable, Optional

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)

INPUT_CHOICES = ('auto', 'sensor_data', 'reliable')
OUTPUT_CHOICES = ('reliable', 'sensor_data')
INPUT_DEPTH = 5
OUTPUT_DEPTH = 2
RELIABLE, BEST_EFFORT = 'reliable', 'best_effort'


def decide(offered: Iterable[Any]) -> str:
    """Reliability for an ``auto`` input given its publishers' offered reliabilities.

    Args:
        offered: ``ReliabilityPolicy`` of each publisher now on the topic.

    Returns:
        :data:`RELIABLE` when every publisher is reliable (or there is none), otherwise
        :data:`BEST_EFFORT`.
    """
    return RELIABLE if all(r == ReliabilityPolicy.RELIABLE for r in offered) else BEST_EFFORT


def reliable(depth: int, latched: bool = False) -> QoSProfile:
    """Reliable keep-last ``depth``; volatile, or transient-local when ``latched``.

    The one reliable profile of the package: node inputs and outputs, the latched labels,
    ``smmcl-replay`` and ``smmcl-demo``.
    """
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=(DurabilityPolicy.TRANSIENT_LOCAL if latched
                                  else DurabilityPolicy.VOLATILE))


def input_profile(reliability: str) -> QoSProfile:
    """Subscription profile for one input image topic (volatile, keep last)."""
    if reliability == BEST_EFFORT:
        return qos_profile_sensor_data
    return reliable(INPUT_DEPTH)


def output_profile(name: str) -> QoSProfile:
    """Publisher profile for the image outputs (``output_qos`` parameter)."""
    if name == 'sensor_data':
        return qos_profile_sensor_data
    if name != 'reliable':
        raise ValueError(f'output QoS {name!r} is invalid; valid: {list(OUTPUT_CHOICES)}')
    return reliable(OUTPUT_DEPTH)


class AdaptiveSubscription:
    """One input subscription whose reliability follows the ``qos`` choice and its publishers.

    Args:
        node: The rclpy node that owns the subscription.
        msg_type: Message class.
        topic: Relative topic name (remapped by the node's arguments).
        callback: Message callback; kept across re-creations.
        choice: ``auto``, ``sensor_data`` or ``reliable``.
        log: Called with one line per decision.
    """

    def __init__(self, node: Any, msg_type: Any, topic: str, callback: Callable[[Any], None],
                 choice: str, log: Callable[[str], None]) -> None:
        if choice not in INPUT_CHOICES:
            raise ValueError(f'input QoS {choice!r} is invalid; valid: {list(INPUT_CHOICES)}')
        self.topic = topic
        self.choice = choice
        self.reliability: Optional[str] = None
        self.publishers = 0
        self.changes = 0  # re-creations after the first subscription
        self._node, self._msg_type, self._callback, self._log = node, msg_type, callback, log
        self._subscription = None
        self._logged_publishers = -1
        self.resolved = node.resolve_topic_name(topic)
        self.refresh()

    def _offered(self) -> list:
        infos = self._node.get_publishers_info_by_topic(self.resolved)
        return [info.qos_profile.reliability for info in infos]

    def refresh(self) -> bool:
        """Re-decide from the current publishers; re-create the subscription on a change.

        Runs in the executor thread (a timer), like the message callbacks, so no message is
        handled while the subscription is swapped.

        Returns:
            True if the subscription was (re-)created.
        """
        offered = self._offered()
        self.publishers = len(offered)
        if self.choice == 'auto':
            wanted = decide(offered)
        else:
            wanted = BEST_EFFORT if self.choice == 'sensor_data' else RELIABLE
        kinds = ', '.join(sorted(_name(r) for r in offered)) or 'none yet'
        if wanted == self.reliability and self._subscription is not None:
            if len(offered) != self._logged_publishers:
                self._logged_publishers = len(offered)
                self._log(f'{self.topic} ({self.resolved}): {len(offered)} publisher(s) '
                          f'[{kinds}] -> keeping {wanted}')
            return False
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self.changes += 1
        self._subscription = self._node.create_subscription(
            self._msg_type, self.topic, self._callback, input_profile(wanted))
        self.reliability = wanted
        self._logged_publishers = len(offered)
        self._log(f'{self.topic} ({self.resolved}): qos {self.choice}, {len(offered)} '
                  f'publisher(s) [{kinds}] -> subscribing {wanted}')
        return True

    def describe(self) -> str:
        """Current reliability for diagnostics, e.g. ``reliable``."""
        return str(self.reliability)

    def destroy(self) -> None:
        """Destroy the subscription (no more callbacks)."""
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None


def _name(reliability: Any) -> str:
    if reliability == ReliabilityPolicy.RELIABLE:
        return RELIABLE
    if reliability == ReliabilityPolicy.BEST_EFFORT:
        return BEST_EFFORT
    return str(getattr(reliability, 'name', reliability)).lower()
