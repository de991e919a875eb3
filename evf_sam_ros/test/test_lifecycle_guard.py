"""The rclpy adapter (node/lifecycle_guard.py), the one module that touches rclpy's private
lifecycle names: it knows the installed rclpy, installs its guard exactly where rclpy needs it,
and a lifecycle node built on it refuses an invalid transition and keeps spinning (real rclpy,
real DDS).
"""

from __future__ import annotations

import threading

from lifecycle_msgs.msg import Transition
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle.node import LifecycleNodeMixin

from evf_sam_ros.node import lifecycle_guard
from evf_sam_ros.node.lifecycle_guard import (
    PRIVATE_HANDLER,
    REFUSES_ITSELF_FROM,
    WRITTEN_FOR,
    GuardedLifecycleNode,
)


def test_the_installed_rclpy_is_one_the_guard_was_checked_on():
    version = lifecycle_guard.rclpy_version()
    assert version in (WRITTEN_FOR, REFUSES_ITSELF_FROM), (
        f'node/lifecycle_guard.py was written for rclpy {WRITTEN_FOR} (Jazzy: it wraps '
        f'LifecycleNodeMixin.__on_change_state) and checked on rclpy {REFUSES_ITSELF_FROM} '
        f'(Kilted: rclpy refuses invalid transitions itself, no guard). rclpy {version} is '
        'installed: check how it answers `activate` twice and update the guard'
    )


def test_the_guard_is_installed_exactly_where_rclpy_needs_it():
    guarded = PRIVATE_HANDLER in vars(GuardedLifecycleNode)
    assert guarded == lifecycle_guard.needs_guard(lifecycle_guard.rclpy_version())
    assert lifecycle_guard.needs_guard('7.1.5') and not lifecycle_guard.needs_guard('9.1.2')
    if guarded:
        assert hasattr(LifecycleNodeMixin, PRIVATE_HANDLER)


def test_an_invalid_transition_is_refused_and_the_node_keeps_spinning(ros_client):
    node = GuardedLifecycleNode('guard_probe', namespace='/lifecycle_guard')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    errors: list[BaseException] = []

    def spin() -> None:
        try:
            executor.spin()
        except BaseException as exc:  # what rclpy 7 does without the guard
            errors.append(exc)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        fqn = '/lifecycle_guard/guard_probe'
        assert not ros_client.transition(fqn, Transition.TRANSITION_ACTIVATE)
        assert ros_client.lifecycle_state(fqn) == 'unconfigured'
        assert ros_client.transition(fqn, Transition.TRANSITION_CONFIGURE)
        assert ros_client.lifecycle_state(fqn) == 'inactive'
        assert not errors and thread.is_alive()
    finally:
        executor.shutdown()
        thread.join(5)
        node.destroy_node()
