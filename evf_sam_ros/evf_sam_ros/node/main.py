"""Entry point of `ros2 run evf_sam_ros evf_sam_node` (console script evf_sam_node)."""

from __future__ import annotations

import sys
from typing import Optional

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor


def main(args: Optional[list[str]] = None) -> int:
    """Spin an EvfSamNode on a multi-threaded executor until Ctrl-C or shutdown."""
    rclpy.init(args=args)
    from .evf_sam_node import EvfSamNode

    node = EvfSamNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        # Ctrl-C or SIGTERM, the normal way to stop; rosout is already gone, so plain stderr
        print("evf_sam_node: stopping on signal", file=sys.stderr)
    finally:
        node.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
