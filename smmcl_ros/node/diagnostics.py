"""The node's ``/diagnostics`` message from a ``NodeStats`` summary (pipeline.stats)."""

from typing import Any, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


def diagnostic_array(name: str, level: int, message: str, hardware_id: str,
                     values: Sequence[Tuple[str, str]], stamp: Any) -> DiagnosticArray:
    """One ``DiagnosticStatus`` (level from :mod:`smmcl_ros.pipeline.stats`) in an array."""
    status = DiagnosticStatus(level=bytes([level]), name=name, message=message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
