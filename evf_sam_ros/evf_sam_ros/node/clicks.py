"""Correction clicks into the node: the click topics and the ``~/correct_target`` service.

- ``click/positive`` and ``click/negative`` (geometry_msgs/Point, what rqt_image_view's
  "publish click location" sends on ``<image topic>_mouse_left``: pixels of the viewed image,
  no stamp; remap it here): a click on the *first* target (the primary, which ``command``
  sets, else the first added: the one the single-target outputs serve) on the newest frame
  the node had processed when the click arrived.
  Negative clicks come from a second viewer (view ``overlay`` in one, ``image`` in the other,
  and remap one ``_mouse_left`` to ``click/negative``), from a tool, or from the service.
- ``click/positive_stamped`` and ``click/negative_stamped`` (geometry_msgs/PointStamped):
  the same, on the frame whose stamp is ``header.stamp`` (the clicked image's).
- ``~/correct_target`` (evf_sam_msgs/srv/CorrectTarget): any target, several points with
  labels, a stamp (zero: the newest frame); answers with the corrected mask on that frame.

A refused click (segment mode, an unknown target, a point outside the image, a frame no longer
held, ...) is warned (throttled) and counted on /diagnostics as ``problem.<kind>``
(model.errors.ClickError kinds); the node carries on.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from evf_sam_ros.codecs.image import stamp_ns
from evf_sam_ros.model.errors import ClickError
from evf_sam_ros.model.points import NEGATIVE, POSITIVE
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.pipeline.messages import inference_seconds, ros_header, segmentation_msg
from evf_sam_ros.pipeline.track import TrackSegmenter
from evf_sam_ros.target3d.estimate import TargetEstimate, TargetSettings, is_found


class ClickInput:
    """Turns click messages and requests into EvfSamTracker corrections (via the node's
    TrackSegmenter).

    segmenter: the node's current segmenter (None while unconfigured); primary: the first
    target's id (None without targets); warn(kind, message): throttled warning, counted by
    kind; applied(): counts an applied click; target_settings: for ``found`` in the service's
    answer; frame_id: the newest image's frame_id (the answer's header).
    """

    def __init__(
        self,
        segmenter: Callable[[], Any],
        primary: Callable[[], int | None],
        warn: Callable[[str, str], None],
        applied: Callable[[], None],
        target_settings: Callable[[], TargetSettings],
        frame_id: Callable[[], str],
    ):
        self._segmenter, self._primary, self._warn = segmenter, primary, warn
        self._applied = applied
        self._target_settings, self._frame_id = target_settings, frame_id

    # ---- topic handlers ----------------------------------------------------------------
    def positive(self, msg: Any) -> None:
        """geometry_msgs/Point: a positive click on the first target, newest frame."""
        self._topic(msg, None, POSITIVE)

    def negative(self, msg: Any) -> None:
        """geometry_msgs/Point: a negative click on the first target, newest frame."""
        self._topic(msg, None, NEGATIVE)

    def positive_stamped(self, msg: Any) -> None:
        """geometry_msgs/PointStamped: a positive click on the frame of ``header.stamp``."""
        self._topic(msg.point, stamp_ns(msg.header), POSITIVE)

    def negative_stamped(self, msg: Any) -> None:
        """geometry_msgs/PointStamped: a negative click on the frame of ``header.stamp``."""
        self._topic(msg.point, stamp_ns(msg.header), NEGATIVE)

    def _topic(self, point: Any, key: Hashable, label: int) -> None:
        try:
            target_id = self._primary()
            if target_id is None:
                raise ClickError(
                    'click_unknown_target', 'no target to correct: name one on `command` first'
                )
            self._apply(target_id, [[point.x, point.y]], [label], key)
        except ClickError as exc:
            self._warn(exc.kind, f'click refused: {exc}')

    # ---- the service ---------------------------------------------------------------------
    def serve(self, request: Any, response: Any) -> Any:
        """evf_sam_msgs/srv/CorrectTarget: success with the corrected Segmentation on the
        clicked frame, or success=false with the reason (also warned and counted).
        """
        key = stamp_ns(request) or None  # builtin_interfaces/Time: zero = the newest frame
        points = [[p.x, p.y] for p in request.points]
        try:
            result, key = self._apply(request.target_id, points, list(request.labels), key)
        except ClickError as exc:
            self._warn(exc.kind, f'~/correct_target refused: {exc}')
            response.success, response.message = False, str(exc)
            return response
        header = ros_header(int(key or 0), self._frame_id())
        found = is_found(result, self._target_settings())
        estimate = TargetEstimate(found, None, None)
        response.result = segmentation_msg(
            result, header, estimate, inference_seconds(result), request.target_id
        )
        response.success, response.message = True, 'corrected'
        return response

    def _apply(
        self, target_id: int, points: list, labels: list, key: Hashable
    ) -> tuple[SegmentationResult, Hashable]:
        segmenter = self._segmenter()
        if not isinstance(segmenter, TrackSegmenter):
            why = 'no model is loaded' if segmenter is None else 'the node is in segment mode'
            raise ClickError(
                'click_not_tracking',
                f'clicks correct tracked targets and {why}: run with mode: track (in segment '
                'mode ~/segment takes points with its image)',
            )
        if key is None:  # the newest frame processed when the click arrived
            key = segmenter.last_key
        result = segmenter.correct(target_id, points, labels, key)
        self._applied()
        return result, key
