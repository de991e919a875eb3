"""Everything published for one processed frame, built once for the node and the replay.

The first target serves the single-target topics (``segmentation``, ``mask``,
``target_point``, ``target_pose``); ``segmentations`` holds every target; ``target_cloud``
(every target's surface points, with a ``target_id`` field), ``markers`` (a namespace per
target) and ``grasps`` (every target's grasp candidates) are built only when asked for
(someone subscribes).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from evf_sam_ros.pipeline.drawing import target_color
from evf_sam_ros.pipeline.frame import TargetOutput
from evf_sam_ros.target3d.cloud import TargetCloud


class FrameMessages:
    """Builds a frame's output messages; remembers which targets have markers, so a target
    that is gone gets its markers deleted (``deleted_markers``).
    """

    def __init__(self) -> None:
        self._marked: set[int] = set()

    def build(
        self,
        outputs: Sequence[TargetOutput],
        with_cloud: bool,
        with_markers: bool,
        with_grasps: bool = False,
    ) -> list[tuple[str, Any]]:
        """(output topic, message) pairs for a frame's targets (in target order, not empty)."""
        from evf_sam_msgs.msg import SegmentationArray

        first = outputs[0].messages
        header = first.segmentation.header
        published = first.by_role()
        published.append(
            (
                'segmentations',
                SegmentationArray(
                    header=header, segmentations=[o.messages.segmentation for o in outputs]
                ),
            )
        )
        if with_cloud:
            published.append(('target_cloud', targets_cloud_msg(header, outputs)))
        if with_markers:
            published.append(('markers', self._markers(header, outputs)))
        if with_grasps:
            from evf_sam_ros.pipeline.pick_messages import grasp_array_msg

            published.append(
                ('grasps', grasp_array_msg(header, [(o.target.id, o.pick) for o in outputs]))
            )
        return published

    def _markers(self, header: Any, outputs: Sequence[TargetOutput]) -> Any:
        from evf_sam_ros.pipeline.markers import pick_markers, target_markers

        gone = self.deleted_markers(header, {o.target.id for o in outputs})
        markers = list(gone.markers) if gone is not None else []
        for index, o in enumerate(outputs):
            estimate = o.estimate
            markers += target_markers(
                header,
                o.target.id,
                o.prompt,
                o.result.score,
                estimate.box if estimate.found else None,
                estimate.point,
                target_color(index),
            ).markers
            markers += pick_markers(header, o.target.id, o.pick, target_color(index))
        self._marked = {o.target.id for o in outputs}
        return _marker_array(markers)

    def deleted_markers(self, header: Any, current_ids: set[int]) -> Any | None:
        """A MarkerArray deleting the markers of targets not in ``current_ids`` (removed
        since the last frame), or None when there are none.
        """
        from evf_sam_ros.pipeline.markers import delete_target_markers

        gone = sorted(self._marked - set(current_ids))
        self._marked &= set(current_ids)
        if not gone:
            return None
        return _marker_array([m for i in gone for m in delete_target_markers(header, i).markers])


def _marker_array(markers: list) -> Any:
    from visualization_msgs.msg import MarkerArray

    return MarkerArray(markers=markers)


def targets_cloud_msg(header: Any, outputs: Sequence[TargetOutput]) -> Any:
    """sensor_msgs/PointCloud2 of every target's cloud, with each point's target_id."""
    from evf_sam_ros.pipeline.messages import point_cloud2_msg

    clouds = [
        (o.target.id, o.estimate.cloud)
        for o in outputs
        if o.estimate.found and o.estimate.cloud is not None and len(o.estimate.cloud)
    ]
    points = [c.points for _, c in clouds] or [np.zeros((0, 3), np.float32)]
    coloured = all(c.colours is not None for _, c in clouds)
    colours = np.concatenate([c.colours for _, c in clouds]) if clouds and coloured else None
    ids = (
        np.concatenate([np.full(len(c), i, np.int32) for i, c in clouds])
        if clouds
        else np.zeros(0, np.int32)
    )
    merged = TargetCloud(np.concatenate(points).astype(np.float32), colours)
    return point_cloud2_msg(header, merged, ids)
