"""Input problems of the node: counted in the stats, logged throttled per (topic, reason)."""

from typing import Any, Callable, Dict, Tuple

from smmcl_ros.pipeline.stats import NodeStats


class ProblemLog:
    """The node's :data:`~smmcl_ros.pipeline.stats.Report` sink.

    Args:
        logger: The node's rclpy logger.
        stats: Where the problem is counted (read when called: the node replaces it).
        throttle_sec: Seconds between two log lines of one (topic, reason).
    """

    def __init__(self, logger: Any, stats: Callable[[], NodeStats], throttle_sec: float) -> None:
        self._logger = logger
        self._stats = stats
        self._throttle = throttle_sec
        self._loggers: Dict[Tuple[str, str], Any] = {}

    def __call__(self, topic: str, reason: str, detail: str, once: bool = False) -> None:
        """Count one problem on ``topic`` and log ``topic: reason: detail``."""
        self._stats().issue(topic, reason)
        key = (topic, reason)
        if key not in self._loggers:
            # rclpy throttles per logger object and call site: one child logger per key keeps
            # one noisy reason from hiding another.
            self._loggers[key] = self._logger.get_child(f'{topic.replace("/", "_")}_{reason}')
        logger = self._loggers[key]
        if once:
            logger.warning(f'{topic}: {reason}: {detail}', once=True)
        else:
            logger.warning(f'{topic}: {reason}: {detail}', throttle_duration_sec=self._throttle)
