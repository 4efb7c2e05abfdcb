"""The ``smmcl_segmentation`` node: rclpy wiring around :mod:`smmcl_ros.pipeline`.

- ``params``: parameters, declared with defaults, read once, validated.
- ``model``: the checkpoint as the parameters configure it (modality, class names).
- ``qos``: input QoS that follows the publishers; the output and reliable profiles.
- ``core``: :class:`~smmcl_ros.node.core.SegmentationCore`, publishers + subscriptions +
  timers around the pipeline, with configure / activate / deactivate / cleanup steps.
- ``node``: the plain node (all steps at start-up) and its ``main``.
- ``lifecycle``: the managed node.
- ``diagnostics``: the ``/diagnostics`` message.

``python -m smmcl_ros.node`` runs the plain node. Nothing here imports torch until the model is
loaded (``configure``).
"""
