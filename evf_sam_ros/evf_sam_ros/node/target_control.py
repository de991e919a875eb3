"""The node's targets: the ``command`` topic (primary target), the ``targets/*`` topics and
the ``~/add_target``, ``~/remove_target``, ``~/clear_targets`` services (node.interface), on
the shared ``pipeline.TargetList``. Every change is announced on ``prompt`` and ``targets``
(latched), and the markers of removed targets are deleted.
"""

from __future__ import annotations

from typing import Any, Callable

from evf_sam_ros.model.errors import PromptError
from evf_sam_ros.node.diagnostics import NodeStats
from evf_sam_ros.pipeline import FrameMessages, SourceImage, TargetList


class TargetControl:
    """Serves the target topics and services. ``publish(name, msg)`` and
    ``has_subscribers(name)`` reach the node's outputs; ``last_image()`` the newest image
    (the header of marker deletions).
    """

    def __init__(
        self,
        targets: TargetList,
        stats: NodeStats,
        outputs: FrameMessages,
        publish: Callable[[str, Any], None],
        has_subscribers: Callable[[str], bool],
        last_image: Callable[[], SourceImage | None],
    ):
        self.targets, self._stats, self._outputs = targets, stats, outputs
        self._publish, self._has_subscribers, self._last_image = (
            publish,
            has_subscribers,
            last_image,
        )

    # ---- topics ------------------------------------------------------------------------
    def on_command(self, msg: Any) -> None:
        """std_msgs/String on ``command``: set (empty: remove) the primary target."""
        self._stats.count('commands')
        self.apply_command(msg.data, 'command')

    def on_add(self, msg: Any) -> None:
        """std_msgs/String on ``targets/add``."""
        self.add(msg.data)

    def on_remove(self, msg: Any) -> None:
        """std_msgs/Int32 on ``targets/remove``."""
        self.remove(msg.data)

    def on_clear(self, msg: Any) -> None:
        """std_msgs/Empty on ``targets/clear``."""
        self.clear()

    # ---- services ----------------------------------------------------------------------
    def add_service(self, request: Any, response: Any) -> Any:
        """evf_sam_msgs/AddTarget."""
        response.success, response.message, response.target_id = self.add(request.prompt)
        return response

    def remove_service(self, request: Any, response: Any) -> Any:
        """evf_sam_msgs/RemoveTarget."""
        response.success, response.message = self.remove(request.target_id)
        return response

    def clear_service(self, request: Any, response: Any) -> Any:
        """std_srvs/Trigger."""
        response.success, response.message = self.clear()
        return response

    # ---- the changes ---------------------------------------------------------------------
    def apply_command(self, text: str, source: str) -> bool:
        """Set the primary target from ``text`` (``source`` names it in a refusal)."""
        problem = self.targets.command(text, source)
        if problem is not None:
            self._refused(problem.message)
            return False
        self.announce()
        return True

    def add(self, prompt: str) -> tuple[bool, str, int]:
        """Add a target: (success, message, id)."""
        try:
            target = self.targets.add(prompt)
        except PromptError as exc:
            self._refused(f'target {prompt[:80]!r} refused: {exc}')
            return False, str(exc), -1
        self.announce()
        return True, f'target {target.id}: {target.prompt}', target.id

    def remove(self, target_id: int) -> tuple[bool, str]:
        """Remove a target: (success, message)."""
        if not self.targets.remove(int(target_id)):
            ids = [t.id for t in self.targets.snapshot()]
            return False, f'no target with id {target_id} (targets: {ids})'
        self.announce()
        return True, f'target {target_id} removed'

    def clear(self) -> tuple[bool, str]:
        """Remove every target: (success, message)."""
        count = self.targets.clear()
        self.announce()
        return True, f'{count} targets removed'

    def _refused(self, message: str) -> None:
        self._stats.count('prompts_rejected')
        self._stats.warn('prompt_rejected', message)

    def announce(self) -> None:
        """Publish the primary prompt on ``prompt`` and the list on ``targets``; delete the
        markers of targets that are gone.
        """
        from std_msgs.msg import String

        from evf_sam_msgs.msg import Target, TargetArray

        snapshot = self.targets.snapshot()
        self._publish('prompt', String(data=self.targets.primary_prompt))
        self._publish(
            'targets', TargetArray(targets=[Target(id=t.id, prompt=t.prompt) for t in snapshot])
        )
        image = self._last_image()
        if image is not None and self._has_subscribers('markers'):  # removed: no markers
            gone = self._outputs.deleted_markers(image.header, {t.id for t in snapshot})
            if gone is not None:
                self._publish('markers', gone)
