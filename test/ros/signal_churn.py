"""Executors made and shut down in a loop while SIGINTs arrive, as in a node's teardown.

``python3 test/ros/signal_churn.py SECONDS [--rclpy-handlers]`` prints ``ready`` once the
signals may come, then, after SECONDS, one JSON line: rounds done, rounds whose context a
signal had shut down, signals counted. The stop-signal handler is in its teardown state
(every signal ignored and counted), as during a node's teardown. With ``--rclpy-handlers``
rclpy's own signal handlers are installed (plain ``rclpy.init()``): their native thread
triggers the guard conditions the loop destroys, and the process dies with SIGSEGV, usually
within a second.
"""

import json
import sys
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import get_current_signal_handlers_options

from smmcl_ros.node.shutdown import ignore_stop_signals, init_rclpy, StopSignals


def main() -> int:
    seconds = float(sys.argv[1])
    signals = StopSignals()
    signals.install()
    signals.stop()  # the teardown state: ignore and count
    if '--rclpy-handlers' in sys.argv[2:]:
        rclpy.init()
    else:
        init_rclpy([])
    print('ready', flush=True)
    rounds = refused = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        context = Context()
        context.init()
        try:
            executor = SingleThreadedExecutor(context=context)
            executor.shutdown()
            rounds += 1
        except RuntimeError:  # rclpy's handlers shut the context down first
            refused += 1
        context.try_shutdown()
    print(json.dumps({'rounds': rounds, 'refused': refused, 'signals': signals.ignored,
                      'rclpy_handlers': get_current_signal_handlers_options().name}),
          flush=True)
    rclpy.try_shutdown()
    ignore_stop_signals()  # as run_node: a signal during the exit must not kill it
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
