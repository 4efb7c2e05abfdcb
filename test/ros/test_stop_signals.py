"""Stop signals in a real rclpy process: nothing but the main thread touches rclpy's objects.

rclpy's own SIGINT/SIGTERM handlers wake a native thread that triggers every executor's guard
condition and shuts the contexts down, racing the main thread that destroys them (issue 21:
the lifecycle node died with SIGSEGV as a second SIGINT came during its teardown).
``signal_churn.py --rclpy-handlers`` shows that race within a second; these tests run the same
churn as the node processes start rclpy (:func:`smmcl_ros.node.shutdown.init_rclpy`).
"""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest
from ros_harness import REPO_ROOT

pytestmark = pytest.mark.ros

CHURN = Path(__file__).with_name('signal_churn.py')


def _storm(env: dict, seconds: float, *flags: str):
    """signal_churn.py under a SIGINT every ms; (exit code, its output, signals sent)."""
    env = dict(env, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get('PYTHONPATH', '')]),
               PYTHONFAULTHANDLER='1')
    proc = subprocess.Popen([sys.executable, str(CHURN), str(seconds), *flags], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == 'ready'
    sent = 0
    deadline = time.monotonic() + seconds + 60.0
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGINT)
        sent += 1
        time.sleep(0.001)
    out = proc.communicate(timeout=30)[0]
    return proc.returncode, out, sent


def test_executors_destroyed_under_a_signal_storm(ros_env):
    code, out, sent = _storm(ros_env, 3.0)
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    print(f'{sent} SIGINTs sent: {result}')
    assert result['rclpy_handlers'] == 'NO'
    assert result['refused'] == 0  # no signal shut a context down behind the main thread
    assert result['rounds'] > 1000 and result['signals'] > 500, result


def test_init_rclpy_leaves_the_python_handler_in_place(ros_env):
    script = ('import signal, rclpy\n'
              'from rclpy.signals import get_current_signal_handlers_options\n'
              'from smmcl_ros.node.shutdown import init_rclpy, StopSignals\n'
              'handler = StopSignals(); handler.install(); init_rclpy([])\n'
              'print(signal.getsignal(signal.SIGINT) is handler,'
              ' signal.getsignal(signal.SIGTERM) is handler,'
              ' get_current_signal_handlers_options().name)\n'
              'rclpy.try_shutdown()\n')
    env = dict(ros_env, PYTHONPATH=os.pathsep.join([str(REPO_ROOT),
                                                   ros_env.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['True', 'True', 'NO'], out.stdout


def test_the_first_signal_interrupts_start_up_and_only_flags_serving():
    from smmcl_ros.node.shutdown import StopSignals

    starting = StopSignals()
    with pytest.raises(KeyboardInterrupt):  # e.g. a long model load
        starting(signal.SIGTERM, None)
    assert starting.stopping and starting.received == 'SIGTERM'

    serving = StopSignals()
    serving.serving()
    serving(signal.SIGINT, None)  # must not raise out of whatever the spin was running
    assert serving.stopping and serving.received == 'SIGINT' and serving.ignored == 0
    serving.stop()
    serving(signal.SIGINT, None)
    serving(signal.SIGTERM, None)
    assert serving.received == 'SIGINT' and serving.ignored == 2
