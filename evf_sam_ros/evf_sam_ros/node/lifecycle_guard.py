"""The one place evf_sam_ros touches rclpy's private lifecycle names: a guard for the
``~/change_state`` service on the rclpy versions that need it.

In rclpy 7 (Jazzy; Humble too) a request for a transition the current state does not have
(``ros2 lifecycle set /evf_sam activate`` twice, configure or cleanup while active) raises
``RCLError: ... Transition is not registered`` out of ``executor.spin()``: the caller gets no
answer and the process exits. rclpy 9.1.2 (Kilted) refuses such a request itself
(success=false and an error log). rclpy's public API has no hook for this request: the handler
is ``LifecycleNodeMixin``'s private ``__on_change_state`` and the current state is only in its
private ``_state_machine``; replacing the service with our own would also lose rcl's
``transition_event`` publisher, which launch_ros's lifecycle event handlers listen to. So,
where rclpy needs it, ``GuardedLifecycleNode`` wraps the private handler (answering
success=false with a warning), and a changed rclpy fails at import, saying what changed.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle.node import LifecycleNodeMixin

#: The rclpy release the guard was written for (Jazzy), and the first checked to refuse
#: invalid transitions itself (Kilted): from there on no guard is installed.
WRITTEN_FOR = '7.1.5'  # package.xml's version (the PyPI wheel ros-rclpy 7.1.6 ships it)
REFUSES_ITSELF_FROM = '9.1.2'
#: rclpy's private names the guard uses.
PRIVATE_HANDLER = '_LifecycleNodeMixin__on_change_state'
PRIVATE_STATE = '_state_machine'


def rclpy_version() -> str:
    """The installed rclpy's version, from its package.xml (apt and wheel installs alike)."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from ament_index_python.packages import get_package_share_directory

    package_xml = Path(get_package_share_directory('rclpy')) / 'package.xml'
    return ET.parse(package_xml).getroot().findtext('version', '').strip()


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split('.')[:3] if p.isdigit())


def needs_guard(version: str) -> bool:
    """True for an rclpy older than the first release seen to refuse invalid transitions."""
    return _release(version) < _release(REFUSES_ITSELF_FROM)


def _guarded(handler: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """Wrap rclpy's change_state handler so that a transition the state machine refuses is
    answered success=false with a warning, the node left in its state.
    """
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

    @functools.wraps(handler)
    def change_state(node: Any, request: Any, response: Any) -> Any:
        try:
            return handler(node, request, response)
        except _rclpy.RCLError as exc:
            state = getattr(node, PRIVATE_STATE).current_state[1]
            wanted = request.transition.label or f'id {request.transition.id}'
            node.get_logger().warning(
                f'lifecycle transition {wanted} refused in state '
                f"'{state}': {str(exc).splitlines()[0]}"
            )
            response.success = False
            return response

    return change_state


def _guard_members() -> dict[str, Any]:
    """The class members GuardedLifecycleNode needs on the installed rclpy (none when rclpy
    refuses invalid transitions itself). RuntimeError when rclpy changed what the guard uses.
    """
    version = rclpy_version()
    if not needs_guard(version):
        return {}
    handler = getattr(LifecycleNodeMixin, PRIVATE_HANDLER, None)
    if handler is None:
        raise RuntimeError(
            f'evf_sam_ros: rclpy {version} has no LifecycleNodeMixin.{PRIVATE_HANDLER} '
            f'(the lifecycle guard in evf_sam_ros/node/lifecycle_guard.py was written for rclpy '
            f'{WRITTEN_FOR}); check how this rclpy answers an invalid transition and update '
            'the guard'
        )
    return {PRIVATE_HANDLER: _guarded(handler)}


#: rclpy's LifecycleNode whose ~/change_state refuses an invalid transition on every rclpy.
GuardedLifecycleNode: type = type(
    'GuardedLifecycleNode',
    (LifecycleNode,),
    {
        '__doc__': "rclpy's LifecycleNode; ~/change_state refuses a transition the state lacks.",
        '__module__': __name__,
        **_guard_members(),
    },
)
