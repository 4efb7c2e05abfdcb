"""Bag tools; reading and writing need ``rosbags`` only, no ROS installation.

rosbag2 I/O (``errors``, ``messages``, ``recovery``, ``reader``, ``writer``), ``smmcl-bag-eval``
(``evaluator``, ``report``, ``eval_cli``), ``smmcl-make-bag`` and ``smmcl-replay``.
"""
