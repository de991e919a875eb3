"""RViz markers of a target (visualization_msgs/MarkerArray for the ``markers`` topic).

Each target has its own namespace (``marker_namespace``) holding its box (CUBE, id BOX_ID),
its 3D point (SPHERE, id POINT_ID) and a label with the prompt and score (TEXT_VIEW_FACING,
id LABEL_ID); with pick outputs (``pick_markers``) also its place surface (a flat CUBE, id
PLACE_ID) and up to MAX_GRASP_MARKERS grasp candidates, best first: candidate i is an ARROW
along the approach ending at the grasp (id GRASP_FIRST_ID + 2 i) and its opening (id
GRASP_FIRST_ID + 2 i + 1: for parallel jaws a LINE_LIST drawing the two fingers ``width``
apart, for suction a flat CYLINDER of the cup's diameter).  Markers live until replaced or
deleted (lifetime 0): send ``target_markers`` (and ``pick_markers``) for every result of
the target (parts it lacks are deleted) and ``delete_target_markers`` when the target is
lost or removed.  Positions and sizes are in metres in the source image's optical frame
(header.frame_id; x right, y down, z forward).

visualization_msgs is imported lazily, so this module imports without ROS.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from evf_sam_ros.pipeline.messages import fill_pose, fill_pose_from
from evf_sam_ros.target3d.box3d import OrientedBox
from evf_sam_ros.target3d.grasps import SUCTION, Grasp
from evf_sam_ros.target3d.pick import PickTarget

BOX_ID, POINT_ID, LABEL_ID, PLACE_ID = 0, 1, 2, 3
GRASP_FIRST_ID, MAX_GRASP_MARKERS = 10, 8
MARKER_IDS = (BOX_ID, POINT_ID, LABEL_ID, PLACE_ID) + tuple(
    range(GRASP_FIRST_ID, GRASP_FIRST_ID + 2 * MAX_GRASP_MARKERS)
)
#: Length of a grasp's approach arrow, of the drawn fingers, thickness of the place surface.
ARROW_LENGTH_M, FINGER_LENGTH_M, PLACE_THICKNESS_M = 0.08, 0.03, 0.003
PLACE_COLOR = (60, 220, 90)
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


def _point(xyz: np.ndarray) -> Any:
    from geometry_msgs.msg import Point

    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def _grasp_markers(header: Any, target_id: Any, index: int, grasp: Grasp, color) -> list:
    """The approach arrow and the opening of grasp candidate ``index``."""
    from visualization_msgs.msg import Marker

    x, z, p = grasp.rotation[:, 0], grasp.rotation[:, 2], grasp.position
    arrow = _marker(header, target_id, GRASP_FIRST_ID + 2 * index, Marker.ARROW)
    arrow.points = [_point(p - z * ARROW_LENGTH_M), _point(p)]
    arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.004, 0.008, 0.012
    _set_color(arrow, color, 1.0)
    if grasp.kind == SUCTION:
        opening = _marker(header, target_id, GRASP_FIRST_ID + 2 * index + 1, Marker.CYLINDER)
        fill_pose_from(opening.pose, p, grasp.rotation)
        opening.scale.x = opening.scale.y = float(grasp.width)
        opening.scale.z = 0.004
    else:
        opening = _marker(header, target_id, GRASP_FIRST_ID + 2 * index + 1, Marker.LINE_LIST)
        half, back = x * grasp.width / 2, z * FINGER_LENGTH_M / 2
        ends = [p - half - back, p + half - back, p - half - back, p - half + back]
        ends += [p + half - back, p + half + back]
        opening.points = [_point(e) for e in ends]
        opening.scale.x = 0.003
    _set_color(opening, color, 0.8)
    return [arrow, opening]


def pick_markers(header: Any, target_id: Any, pick: PickTarget | None, color=DEFAULT_COLOR):
    """Markers (a list) of a target's place surface and its first MAX_GRASP_MARKERS grasp
    candidates; DELETEs for what it lacks (see the module docstring).
    """
    from visualization_msgs.msg import Marker

    place = None if pick is None else pick.place
    surface = _marker(header, target_id, PLACE_ID, None if place is None else Marker.CUBE)
    if place is not None:
        fill_pose_from(surface.pose, place.centre, place.rotation)
        surface.scale.x, surface.scale.y = (max(float(c), MIN_BOX_EDGE_M) for c in place.size)
        surface.scale.z = PLACE_THICKNESS_M
        _set_color(surface, PLACE_COLOR, 0.5)
    markers = [surface]
    grasps = [] if pick is None else pick.grasps[:MAX_GRASP_MARKERS]
    for index in range(MAX_GRASP_MARKERS):
        if index < len(grasps):
            markers += _grasp_markers(header, target_id, index, grasps[index], color)
        else:
            first = GRASP_FIRST_ID + 2 * index
            markers += [_marker(header, target_id, i, None) for i in (first, first + 1)]
    return markers


def delete_target_markers(header: Any, target_id: Any) -> Any:
    """MarkerArray deleting all of a target's markers (target lost or removed)."""
    from visualization_msgs.msg import MarkerArray

    return MarkerArray(markers=[_marker(header, target_id, i, None) for i in MARKER_IDS])
