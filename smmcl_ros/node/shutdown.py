"""A node process from ``rclpy.init`` to exit: the first stop signal ends it, later ones wait.

``ros2 launch`` run in a terminal: Ctrl-C sends SIGINT to the whole foreground process group,
so the node gets one from the terminal and, moments later, the one launch forwards. The first
ends the spin; with Python's default handler the second raised ``KeyboardInterrupt`` wherever
the teardown happened to be (joining the inference thread, destroying publishers): a traceback,
exit code -2, and the Fast DDS participant never destroyed, its shared-memory segments left in
``/dev/shm``. Here the first SIGINT or SIGTERM stops the spin and every later one is ignored
until the process has exited, so the teardown always completes (SIGKILL still ends a hung
process; ``ros2 launch`` sends it 10 s after its SIGINT).

rclpy's own signal handlers are not installed (:func:`init_rclpy`). Theirs wake a native
thread on every signal that triggers every executor's SIGINT guard condition and shuts the
contexts down, with no lock against the main thread destroying those guard conditions (an
executor shut down or garbage-collected): a signal during the teardown was a use after free and
the process died with SIGSEGV (issue 21; gdb: ``rcl_trigger_guard_condition`` on that thread).
The only handler here is :class:`StopSignals`, a Python one: it runs in the main thread between
two bytecodes, so nothing else touches rclpy's objects, and once the node serves it only sets a
flag that the spin loop checks every :data:`SIGNAL_POLL_S`.

:func:`run_node` is the whole ``main()`` of both executables::

    def main(args=None) -> int:
        return run_node(SegmentationNode, spin_until_shutdown, teardown, NODE_NAME, args)
"""

import signal
import threading
from typing import Any, Callable, Optional, Sequence

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from smmcl_core.utils.optional import MissingExtraError

# What a node constructor raises for a bad configuration: parameters (bad value or type),
# missing or corrupt checkpoint, unknown preset, mismatched weights, a missing optional
# package (e.g. torch to export a .pth on a runtime-only install; the message names the extra).
CONFIG_ERRORS = (ValueError, OSError, KeyError, RuntimeError, ParameterException,
                 MissingExtraError)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Longest wait for work before the spin loop checks for a stop signal: the latency of Ctrl-C
# (rclpy's handlers woke the wait at once, see the module docstring).
SIGNAL_POLL_S = 0.1


class StopSignals:
    """Handler for SIGINT and SIGTERM: the first stops the process, later ones are ignored.

    While the node is being built the first signal raises ``KeyboardInterrupt`` (a model load
    or engine build can take minutes); once it serves, the signal only sets :attr:`stopping`,
    which the spin loop checks: raised there, the exception came out of whatever Python code
    the main thread was running, e.g. inside rclpy's message conversion, which turned it into
    ``RuntimeError: Unable to convert call argument`` and a traceback at exit.

    Attributes:
        interrupt: Whether the first signal raises ``KeyboardInterrupt`` (True until
            :meth:`serving`).
        stopping: Set by the first signal, or by :meth:`stop` when the node stops by itself;
            from then on signals are only counted.
        received: Name of the first signal (``SIGINT``), None before.
        ignored: Signals ignored since.
    """

    def __init__(self) -> None:
        self.interrupt = True
        self.stopping = False
        self.received: Optional[str] = None
        self.ignored = 0

    def install(self) -> bool:
        """Install for SIGINT and SIGTERM; False (nothing done) outside the main thread.

        Install before :func:`init_rclpy` so that a signal during start-up is handled too.
        """
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in STOP_SIGNALS:
            signal.signal(signum, self)
        return True

    def serving(self) -> None:
        """From now on the first signal only sets :attr:`stopping`."""
        self.interrupt = False

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
        if self.interrupt:
            raise KeyboardInterrupt


def init_rclpy(args: Optional[Sequence[str]] = None) -> None:
    """``rclpy.init`` without rclpy's signal handlers (why: the module docstring).

    Every rclpy process of this package starts with it. Python's handlers (:class:`StopSignals`
    in the nodes) handle SIGINT in the main thread instead, so a spin must return now and then
    (``spin_once`` with a timeout) for them to take effect.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)


def spin_until_shutdown(node: Any, executor: Executor, stopping: Callable[[], bool]) -> None:
    """Serve ``node`` until a stop signal or until its context is shut down."""
    while not stopping() and executor.context.ok():
        executor.spin_once(timeout_sec=SIGNAL_POLL_S)


def run_node(factory: Callable[[], Any],
             serve: Callable[[Any, Executor, Callable[[], bool]], None],
             teardown: Callable[[Any], None], name: str,
             args: Optional[Sequence[str]] = None) -> int:
    """Init rclpy, build the node, serve it until a stop signal or shutdown, tear it down.

    From the return on, SIGINT and SIGTERM are ignored (:func:`ignore_stop_signals`).

    Args:
        factory: Builds the node; :data:`CONFIG_ERRORS` from it mean a bad configuration.
        serve: ``serve(node, executor, stopping)`` serves the node with the executor it was
            added to until it is done or ``stopping()``, which it checks at least every
            :data:`SIGNAL_POLL_S` (the spin's timeout).
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
    logger = rclpy.logging.get_logger(name)
    node = executor = None
    code = 0
    try:
        try:
            init_rclpy(args)
            node = factory()
        except CONFIG_ERRORS as err:
            # Unless it is the stop signal's KeyboardInterrupt that came out of a binding as
            # another error: then it is a stop, logged below.
            if signals.received is None:
                logger.fatal(f'cannot start: {err} (exit code 1)')
                code = 1
        else:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            signals.serving()
            serve(node, executor, lambda: signals.stopping)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signals.stop()
        if signals.received is not None:
            rclpy.logging.get_logger(f'{name}.shutdown').info(
                f'{signals.received}: shutting down (further signals are ignored)')
        if node is not None:
            try:
                teardown(node)
            except Exception as err:  # logged, not raised: rclpy must still shut down
                logger.error(f'teardown failed: {type(err).__name__}: {err}')
                code = code or 1
        if executor is not None:
            executor.shutdown()
        rclpy.try_shutdown()
        ignore_stop_signals()
    return code


def ignore_stop_signals() -> None:
    """SIGINT and SIGTERM ignored from now on (the process is about to exit).

    Not left to the Python handler: the interpreter's finalization resets every signal with a
    Python handler to its default action, so a signal in the last milliseconds of the exit killed
    the process (exit code -2 instead of 0); an ignored signal stays ignored.
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
