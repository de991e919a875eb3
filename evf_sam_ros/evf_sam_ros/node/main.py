"""Entry point of `ros2 run evf_sam_ros evf_sam_node` (console script evf_sam_node)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.signals import SignalHandlerOptions


def main(args: list[str] | None = None) -> int:
    """Spin an EvfSamNode on a multi-threaded executor until Ctrl-C, SIGTERM or shutdown.

    Signals are this function's, not rclpy's: SIGINT and SIGTERM only set a flag, as often
    as they come. ``ros2 launch`` on Ctrl-C delivers SIGINT twice (the terminal's to the
    whole process group, then launch's own): with rclpy's handlers the second one raised
    KeyboardInterrupt in the middle of the shutdown, or the first shut the context down
    under the spinning executor (``RCLError: failed to initialize wait set``), and the
    process ended with exit code 1. Then, in this order: the node answers waiting requests
    and stops its worker (a forward pass still running after 1.5 s is left to end with the
    process: it publishes and logs nothing), the executor stops and its thread is joined,
    the node goes, rclpy shuts down, and the process ends at once: the Python interpreter's
    own teardown of torch and sam2 took another 1.6-2.3 s on the 2-core development VM
    (measured), with nothing left to release.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from evf_sam_ros.node.evf_sam_node import EvfSamNode

    node = EvfSamNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    autostart(node)
    broke: list[BaseException] = []  # spin ending with an exception: exit code 1

    def spin() -> None:
        try:
            executor.spin()
        except BaseException as exc:
            broke.append(exc)
            raise

    spinner = threading.Thread(target=spin, name='evf_sam_executor', daemon=True)
    spinner.start()
    while spinner.is_alive() and not stop.wait(0.5):
        pass  # signals run their handler here, in the main thread
    node.stop()
    executor.shutdown(timeout_sec=1.0)
    spinner.join(2.0)
    node.destroy_node()
    rclpy.try_shutdown()
    print('evf_sam_node: stopped', file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if broke else 0)


def autostart(node: Any) -> None:
    """Configure, then activate, an EvfSamNode whose ``autostart`` parameter asks for it (the
    launch file turns it off and drives the lifecycle with events instead).
    """
    from rclpy.lifecycle import TransitionCallbackReturn

    if node.settings.autostart:
        if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()


if __name__ == '__main__':
    sys.exit(main())
