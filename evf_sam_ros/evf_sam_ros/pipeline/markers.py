"""RViz markers of a target (visualization_msgs/MarkerArray for the ``markers`` topic).

Each target has its own namespace (``marker_namespace``) holding three markers: its box
(CUBE, id BOX_ID), its 3D point (SPHERE, id POINT_ID) and a label with the prompt and score
(TEXT_VIEW_FACING, id LABEL_ID).  Markers live until replaced or deleted (lifetime 0): send
``target_markers`` for every result of the target (parts it lacks are deleted) and
``delete_target_markers`` when the target is lost or removed.  Positions and sizes are in
metres in the source image's optical frame (header.frame_id; x right, y down, z forward).

visualization_msgs is imported lazily, so this module imports without ROS.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from evf_sam_ros.pipeline.messages import fill_pose
from evf_sam_ros.target3d.box3d import OrientedBox

BOX_ID, POINT_ID, LABEL_ID = 0, 1, 2
MARKER_IDS = (BOX_ID, POINT_ID, LABEL_ID)
#: Diameter of the point's sphere, height of the label's letters, in metres.
POINT_DIAMETER_M = 0.02
LABEL_HEIGHT_M = 0.03
#: Least edge of the drawn box: RViz draws nothing for a zero scale (a face seen face-on).
MIN_BOX_EDGE_M = 0.002
BOX_ALPHA = 0.35
DEFAULT_COLOR = (30, 144, 255)


def marker_namespace(target_id: Any) -> str:
    """The namespace of a target's markers: ``target/<target_id>``."""
    return f'target/{target_id}'


def _marker(header: Any, target_id: Any, marker_id: int, kind: int | None) -> Any:
    """A Marker of ``kind`` (ADD), or with ``kind`` None a DELETE of that id."""
    from visualization_msgs.msg import Marker

    marker = Marker()
    marker.header = header
    marker.ns = marker_namespace(target_id)
    marker.id = marker_id
    if kind is None:
        marker.action = Marker.DELETE
        return marker
    marker.type = kind
    marker.action = Marker.ADD
    marker.pose.orientation.w = 1.0
    return marker


def _set_color(marker: Any, color: Sequence[int], alpha: float) -> None:
    rgb = np.asarray(color, dtype=np.float64)
    if rgb.shape != (3,) or np.any(rgb < 0) or np.any(rgb > 255):
        raise ValueError(f'color must be 3 values in 0..255 (R, G, B), got {color!r}')
    marker.color.r, marker.color.g, marker.color.b = (float(c) / 255.0 for c in rgb)
    marker.color.a = float(alpha)


def _label_position(
    box: OrientedBox | None, point: tuple[float, float, float] | None
) -> np.ndarray:
    """Above the box (or the point) in the image: towards -y of the optical frame."""
    if box is not None:
        half_height = float(np.abs(box.rotation[1]) @ box.size) / 2
        anchor, lift = np.array(box.centre, dtype=np.float64), half_height
    else:
        anchor, lift = np.array(point, dtype=np.float64), POINT_DIAMETER_M / 2
    anchor[1] -= lift + LABEL_HEIGHT_M
    return anchor


def target_markers(
    header: Any,
    target_id: Any,
    prompt: str,
    score: float,
    box: OrientedBox | None,
    point: tuple[float, float, float] | None,
    color: Sequence[int] = DEFAULT_COLOR,
) -> Any:
    """MarkerArray of one target: its box, point and label, DELETEs for what it lacks.

    Arguments:
        header: the source image's header (stamp and optical frame_id).
        target_id: what tells targets apart (int or str); sets the namespace.
        prompt, score: the label's text, ``"<prompt> (<score with 2 decimals>)"``.
        box, point: the target's box and 3D point (metres, optical frame), or None.
        color: (R, G, B) 0..255 of the box and the point (the label is white).
    """
    from visualization_msgs.msg import Marker, MarkerArray

    markers = []
    cube = _marker(header, target_id, BOX_ID, None if box is None else Marker.CUBE)
    if box is not None:
        fill_pose(cube.pose, box)
        cube.scale.x, cube.scale.y, cube.scale.z = (
            max(float(c), MIN_BOX_EDGE_M) for c in box.size
        )
        _set_color(cube, color, BOX_ALPHA)
    markers.append(cube)
    sphere = _marker(header, target_id, POINT_ID, None if point is None else Marker.SPHERE)
    if point is not None:
        sphere.pose.position.x, sphere.pose.position.y, sphere.pose.position.z = (
            float(c) for c in point
        )
        sphere.scale.x = sphere.scale.y = sphere.scale.z = POINT_DIAMETER_M
        _set_color(sphere, color, 1.0)
    markers.append(sphere)
    anchored = box is not None or point is not None
    label = _marker(header, target_id, LABEL_ID, Marker.TEXT_VIEW_FACING if anchored else None)
    if anchored:
        label.pose.position.x, label.pose.position.y, label.pose.position.z = (
            float(c) for c in _label_position(box, point)
        )
        label.scale.z = LABEL_HEIGHT_M
        label.text = f'{prompt} ({score:.2f})'
        _set_color(label, (255, 255, 255), 1.0)
    markers.append(label)
    return MarkerArray(markers=markers)


def delete_target_markers(header: Any, target_id: Any) -> Any:
    """MarkerArray deleting a target's box, point and label (target lost or removed)."""
    from visualization_msgs.msg import MarkerArray

    return MarkerArray(markers=[_marker(header, target_id, i, None) for i in MARKER_IDS])
