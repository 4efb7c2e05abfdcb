"""A node process from ``rclpy.init`` to exit: the first stop signal ends it, later ones wait.

``ros2 launch`` run in a terminal: Ctrl-C sends SIGINT to the whole foreground process group,
so the node gets one from the terminal and, moments later, the one launch forwards. The first
ends the spin; with Python's default handler the second raised ``KeyboardInterrupt`` wherever
the teardown happened to be (joining the inference thread, destroying publishers): a traceback,
exit code -2, and the Fast DDS participant never destroyed, its shared-memory segments left in
``/dev/shm``. Here the first SIGINT or SIGTERM stops the spin and every later one is ignored
until the process has exited, so the teardown always completes (SIGKILL still ends a hung
process; ``ros2 launch`` sends it 10 s after its SIGINT).

:func:`run_node` is the whole ``main()`` of both executables::

    def main(args=None) -> int:
        return run_node(SegmentationNode, rclpy.spin, teardown, NODE_NAME, args)
"""

import signal
import threading
from typing import Any, Callable, Optional, Sequence

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException

from smmcl_core.utils.optional import MissingExtraError

# What a node constructor raises for a bad configuration: parameters (bad value or type),
# missing or corrupt checkpoint, unknown preset, mismatched weights, a missing optional
# package (e.g. torch to export a .pth on a runtime-only install; the message names the extra).
CONFIG_ERRORS = (ValueError, OSError, KeyError, RuntimeError, ParameterException,
                 MissingExtraError)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Handler for SIGINT and SIGTERM: the first raises KeyboardInterrupt, later ones are ignored.

    Attributes:
        stopping: Set by the first signal, or by :meth:`stop` when the node stops by itself;
            from then on signals are only counted.
        received: Name of the first signal (``SIGINT``), None before.
        ignored: Signals ignored since.
    """

    def __init__(self) -> None:
        self.stopping = False
        self.received: Optional[str] = None
        self.ignored = 0

    def install(self) -> bool:
        """Install for SIGINT and SIGTERM; False (nothing done) outside the main thread.

        Install before ``rclpy.init``: rclpy's own handlers call the handler they replace.
        """
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in STOP_SIGNALS:
            signal.signal(signum, self)
        return True

    def stop(self) -> None:
        """From now on, ignore the signals (the teardown has begun)."""
        self.stopping = True

    def __call__(self, signum: int, frame: Any) -> None:
        """The signal handler (``frame`` unused)."""
        if self.stopping:
            self.ignored += 1
            return
        self.stopping = True
        self.received = signal.Signals(signum).name
        raise KeyboardInterrupt


def run_node(factory: Callable[[], Any], spin: Callable[[Any], None],
             teardown: Callable[[Any], None], name: str,
             args: Optional[Sequence[str]] = None) -> int:
    """Init rclpy, build the node, spin it until a stop signal or shutdown, tear it down.

    The stop signal handler stays installed after the return (the process is about to exit:
    a late signal must not interrupt the interpreter's own teardown).

    Args:
        factory: Builds the node; :data:`CONFIG_ERRORS` from it mean a bad configuration.
        spin: Serves the node until it is done or interrupted.
        teardown: Releases the node (stops threads, destroys it); runs with signals ignored.
        name: Logger name for the lines logged before there is a node.
        args: ``rclpy.init`` arguments (None: ``sys.argv``).

    Returns:
        0 after a stop signal, an external shutdown or the node finishing; 1 when the
        configuration is bad (logged as a FATAL line naming the problem) or the teardown
        failed (logged as an error).
    """
    signals = StopSignals()
    signals.install()
    rclpy.init(args=args)
    logger = rclpy.logging.get_logger(name)
    node = None
    code = 0
    try:
        try:
            node = factory()
        except CONFIG_ERRORS as err:
            logger.fatal(f'cannot start: {err} (exit code 1)')
            code = 1
        else:
            spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signals.stop()
        if signals.received is not None:
            # Not the node's logger: rclpy's own handler may have shut the context down
            # already, and the node's /rosout publisher would then fail with an error line.
            rclpy.logging.get_logger(f'{name}.shutdown').info(
                f'{signals.received}: shutting down (further signals are ignored)')
        if node is not None:
            try:
                teardown(node)
            except Exception as err:  # logged, not raised: rclpy must still shut down
                logger.error(f'teardown failed: {type(err).__name__}: {err}')
                code = code or 1
        rclpy.try_shutdown()
    return code
