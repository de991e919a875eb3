"""Faults always speak: an exception in a lifecycle transition, a subscription, timer or
service callback, an action or the inference worker is logged once with its reason and
counted by kind on /diagnostics, and the node carries on.

``guard_*`` wrap a handler of node.interface for the kind of entity that calls it, so that
no exception reaches rclpy's executor (which would end ``spin`` and the process) or is
swallowed by it (an action's execute, a lifecycle transition).
"""

from __future__ import annotations

import functools
import traceback
from typing import Any, Callable

#: report(kind, where, exc): log once and count ``kind`` on /diagnostics.
Report = Callable[[str, str, BaseException], None]


def describe(exc: BaseException) -> str:
    """'Type: message (at file.py:line in function)' of the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f' (at {frames[-1].filename.rsplit("/", 1)[-1]}:{frames[-1].lineno} in {frames[-1].name})'
        if frames
        else ''
    )
    return f'{type(exc).__name__}: {exc}{where}'


def guard_callback(fn: Callable[..., Any], where: str, report: Report) -> Callable[..., Any]:
    """A subscription or timer callback that reports instead of raising."""

    @functools.wraps(fn)
    def run(*args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            report('callback_error', where, exc)

    return run


def guard_service(fn: Callable[[Any, Any], Any], where: str, report: Report) -> Callable:
    """A service handler that answers success=false with the reason instead of raising."""

    @functools.wraps(fn)
    def run(request: Any, response: Any) -> Any:
        try:
            return fn(request, response)
        except Exception as exc:
            report('callback_error', where, exc)
            if hasattr(response, 'success'):
                response.success = False
            if hasattr(response, 'message'):
                response.message = f'{where} failed: {describe(exc)}'
            return response

    return run


def guard_goal(fn: Callable[[Any], Any], where: str, report: Report) -> Callable[[Any], Any]:
    """An action's goal callback that rejects the goal instead of raising."""
    from rclpy.action import GoalResponse

    @functools.wraps(fn)
    def run(goal: Any) -> Any:
        try:
            return fn(goal)
        except Exception as exc:
            report('callback_error', where, exc)
            return GoalResponse.REJECT

    return run


def guard_execute(
    fn: Callable[[Any], Any], where: str, report: Report, result_type: type
) -> Callable[[Any], Any]:
    """An action's execute callback that aborts the goal with the reason instead of raising
    (rclpy would abort it and log, but nothing would count it).
    """

    @functools.wraps(fn)
    def run(goal_handle: Any) -> Any:
        try:
            return fn(goal_handle)
        except Exception as exc:
            report('callback_error', where, exc)
            goal_handle.abort()
            result = result_type()
            if hasattr(result, 'message'):
                result.message = f'{where} failed: {describe(exc)}'
            return result

    return run


def reported_transition(name: str) -> Callable[[Callable], Callable]:
    """Decorator of a lifecycle transition callback (``on_configure``...): an exception is
    handed to the node's ``transition_failed(name, exc)`` and answered ERROR, so that rclpy
    runs ``on_error`` (rclpy itself would answer ERROR and log nothing).
    """
    from rclpy.lifecycle import TransitionCallbackReturn

    def wrap(method: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        @functools.wraps(method)
        def run(node: Any, state: Any) -> Any:
            try:
                return method(node, state)
            except Exception as exc:
                node.transition_failed(name, exc)
                return TransitionCallbackReturn.ERROR

        return run

    return wrap
