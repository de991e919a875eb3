"""A guard for rclpy's lifecycle change_state service.

In the rclpy versions robots run (Humble, Jazzy), asking for a transition the current state
does not have (``ros2 lifecycle set /evf_sam activate`` twice, configure or cleanup while
active) raises ``RCLError: ... Transition is not registered`` out of ``executor.spin()``: the
caller gets no answer and the process exits. The guard answers such a request with
``success=false`` and a warning, and leaves the node in its state.
"""

from __future__ import annotations

import functools
from typing import Any, Callable


def guarded_change_state(
    handler: Callable[[Any, Any, Any], Any],
) -> Callable[[Any, Any, Any], Any]:
    """Wrap rclpy's change_state service handler (an unbound method of the lifecycle mixin)
    so that a transition the state machine refuses is answered as refused.
    """
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

    @functools.wraps(handler)
    def change_state(node: Any, request: Any, response: Any) -> Any:
        try:
            return handler(node, request, response)
        except _rclpy.RCLError as exc:
            state = node._state_machine.current_state[1]
            wanted = request.transition.label or f'id {request.transition.id}'
            node.get_logger().warning(
                f'lifecycle transition {wanted} refused in state '
                f"'{state}': {str(exc).splitlines()[0]}"
            )
            response.success = False
            return response

    return change_state
