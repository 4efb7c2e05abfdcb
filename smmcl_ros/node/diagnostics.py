"""The node's ``/diagnostics`` message: the pipeline's counters plus engine and input QoS."""

from typing import Any, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from smmcl_ros.pipeline.assemble import AuxWatch
from smmcl_ros.pipeline.stats import NodeStats


def diagnostic_array(name: str, stats: NodeStats, watch: AuxWatch, now: float, segmenter: Any,
                     inputs: Mapping[str, Any], stamp: Any) -> DiagnosticArray:
    """One ``DiagnosticStatus`` for the window since the previous call.

    Args:
        name: Status name.
        stats: The pipeline's counters (:meth:`NodeStats.snapshot` starts a new window).
        watch: The aux stream's silence watch.
        now: Monotonic time.
        segmenter: Its ``device``, ``backend`` and ``precision`` are reported.
        inputs: ``{topic: AdaptiveSubscription}``: reliability and publisher count of each.
        stamp: Header stamp.
    """
    device = str(segmenter.device)
    level, message, values = stats.snapshot(watch.age(now), watch.silent(now), device)
    values += [('backend', segmenter.backend), ('precision', segmenter.precision)]
    for topic, subscription in inputs.items():
        values += [(f'qos.{topic}', subscription.describe()),
                   (f'publishers.{topic}', str(subscription.publishers))]
    status = DiagnosticStatus(level=bytes([level]), name=name, message=message,
                              hardware_id=device,
                              values=[KeyValue(key=k, value=v) for k, v in values])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
