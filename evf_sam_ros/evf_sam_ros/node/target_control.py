"""Several targets at once: add, remove and clear them by topic and by service.

Topics (subscribed while active, like ``command``): ``targets/add`` (std_msgs/String),
``targets/remove`` (std_msgs/Int32), ``targets/clear`` (std_msgs/Empty). Services (in every
state): ``~/add_target`` (evf_sam_msgs/AddTarget), ``~/remove_target``
(evf_sam_msgs/RemoveTarget), ``~/clear_targets`` (std_srvs/Trigger). The list itself is the
shared ``pipeline.TargetList``; every change is announced through ``changed``.
"""

from __future__ import annotations

from typing import Any, Callable

from evf_sam_ros.model.errors import PromptError
from evf_sam_ros.pipeline import TargetList


class TargetControl:
    """Serves the target topics and services of a node on a TargetList."""

    def __init__(
        self,
        node: Any,
        targets: TargetList,
        changed: Callable[[], None],
        refused: Callable[[str], None],
        group: Any,
    ):
        from std_srvs.srv import Trigger

        from evf_sam_msgs.srv import AddTarget, RemoveTarget

        self.node, self.targets, self._changed, self._refused = node, targets, changed, refused
        self._group = group
        node.create_service(AddTarget, '~/add_target', self._add_service, callback_group=group)
        node.create_service(
            RemoveTarget, '~/remove_target', self._remove_service, callback_group=group
        )
        node.create_service(Trigger, '~/clear_targets', self._clear_service, callback_group=group)

    def subscriptions(self, qos: Any) -> list[tuple[type, str, Callable[[Any], None]]]:
        """(message type, topic, callback) of the target topics, for NodeIO to subscribe."""
        from std_msgs.msg import Empty, Int32, String

        return [
            (String, 'targets/add', lambda m: self.add(m.data)),
            (Int32, 'targets/remove', lambda m: self.remove(m.data)),
            (Empty, 'targets/clear', lambda m: self.clear()),
        ]

    def add(self, prompt: str) -> tuple[bool, str, int]:
        """Add a target: (success, message, id)."""
        try:
            target = self.targets.add(prompt)
        except PromptError as exc:
            self._refused(f'target {prompt[:80]!r} refused: {exc}')
            return False, str(exc), -1
        self._changed()
        return True, f'target {target.id}: {target.prompt}', target.id

    def remove(self, target_id: int) -> tuple[bool, str]:
        """Remove a target: (success, message)."""
        if not self.targets.remove(int(target_id)):
            ids = [t.id for t in self.targets.snapshot()]
            return False, f'no target with id {target_id} (targets: {ids})'
        self._changed()
        return True, f'target {target_id} removed'

    def clear(self) -> tuple[bool, str]:
        """Remove every target: (success, message)."""
        count = self.targets.clear()
        self._changed()
        return True, f'{count} targets removed'

    def _add_service(self, request: Any, response: Any) -> Any:
        response.success, response.message, response.target_id = self.add(request.prompt)
        return response

    def _remove_service(self, request: Any, response: Any) -> Any:
        response.success, response.message = self.remove(request.target_id)
        return response

    def _clear_service(self, request: Any, response: Any) -> Any:
        response.success, response.message = self.clear()
        return response
