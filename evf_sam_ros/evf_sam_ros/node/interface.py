"""The node's ROS interface, declared once: every topic, service and action with its type,
QoS, callback group and handler, and when it exists.

- Subscriptions (``direction='in'``) are created on activate, when ``when(settings)`` holds.
- Lifecycle publishers (``direction='out'``) are created on configure; ``/diagnostics`` (not
  a lifecycle publisher) with the node.
- Services and the action exist in every state, created with the node.

Handlers are named by a field of ``Handlers`` (plain callables the node wires up), never by
the node object. To add a topic: an entry in ``TOPICS``; for a subscription or a service a
field in ``Handlers`` too; and a README row (tests check both). Types are spelled as ROS
spells them (``sensor_msgs/msg/Image``) and loaded by ``interface_types.load_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from evf_sam_ros.node.settings import NodeSettings

#: History depth of the output publishers (a consumer that falls behind loses old results).
OUTPUT_HISTORY_DEPTH = 10
#: Depth images kept in the subscription's queue: with a history of 1, a depth image the
#: executor has not taken yet is replaced by the next one, and its colour image then finds
#: only a neighbour 1/fps away (seen under CPU load at 5 Hz).
DEPTH_HISTORY_DEPTH = 5

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Handlers:
    """What the interface calls: one callable per subscription, service and action callback
    (the field names are the ``handler`` names of the table below).
    """

    image: Handler  # (sensor_msgs/Image)
    compressed_image: Handler  # (sensor_msgs/CompressedImage)
    depth: Handler  # (sensor_msgs/Image)
    camera_info: Handler  # (sensor_msgs/CameraInfo)
    command: Handler  # (std_msgs/String)
    target_add: Handler  # (std_msgs/String)
    target_remove: Handler  # (std_msgs/Int32)
    target_clear: Handler  # (std_msgs/Empty)
    incompatible_qos: Handler  # (QoSRequestedIncompatibleQoSInfo) of the camera inputs
    click_positive: Handler  # (geometry_msgs/Point): rqt_image_view's click form
    click_negative: Handler  # (geometry_msgs/Point)
    click_positive_stamped: Handler  # (geometry_msgs/PointStamped)
    click_negative_stamped: Handler  # (geometry_msgs/PointStamped)
    segment: Handler  # (request, response) -> response
    correct_target: Handler
    add_target: Handler
    remove_target: Handler
    clear_targets: Handler
    find_target_goal: Handler  # (goal) -> GoalResponse
    find_target_execute: Handler  # (goal_handle) -> result


# ---- QoS of each kind of topic ---------------------------------------------------------
def camera_qos(s: NodeSettings) -> QoSProfile:
    """Image and camera_info: ``image_qos.*``."""
    return QoSProfile(depth=int(s.image_qos_depth), reliability=_reliability(s))


def depth_qos(s: NodeSettings) -> QoSProfile:
    """Depth: as the image, keeping at least DEPTH_HISTORY_DEPTH messages."""
    depth = max(DEPTH_HISTORY_DEPTH, int(s.image_qos_depth))
    return QoSProfile(depth=depth, reliability=_reliability(s))


def command_qos(s: NodeSettings) -> QoSProfile:
    """Commands and target changes: reliable, keep-all (none is lost, applied in order)."""
    return QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)


def output_qos(s: NodeSettings) -> QoSProfile:
    """Outputs: reliable, OUTPUT_HISTORY_DEPTH."""
    return QoSProfile(depth=OUTPUT_HISTORY_DEPTH)


def latched_qos(s: NodeSettings) -> QoSProfile:
    """State announcements: transient local, the last one (late joiners see it)."""
    return QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _reliability(s: NodeSettings) -> ReliabilityPolicy:
    if s.image_qos_reliability == 'reliable':
        return ReliabilityPolicy.RELIABLE
    return ReliabilityPolicy.BEST_EFFORT


def _always(s: NodeSettings) -> bool:
    return True


# ---- the table -------------------------------------------------------------------------
@dataclass(frozen=True)
class Topic:
    """A topic. Subscriptions: ``handler`` (a Handlers field), ``group``, ``when``; with
    ``qos_events`` an incompatible publisher QoS is reported. Publishers: ``lifecycle``
    (created on configure; False: with the node).
    """

    name: str
    type: str
    direction: str  # 'in' | 'out'
    qos: Callable[[NodeSettings], QoSProfile]
    handler: str = ''
    group: str = ''
    when: Callable[[NodeSettings], bool] = _always
    qos_events: bool = False
    lifecycle: bool = True


@dataclass(frozen=True)
class Service:
    """A service (every state), answered by ``handler`` in callback group ``group``."""

    name: str
    type: str
    handler: str
    group: str


@dataclass(frozen=True)
class Action:
    """An action server (every state): goals accepted by ``goal``, run by ``execute``."""

    name: str
    type: str
    goal: str
    execute: str
    group: str


_POINT, _STAMPED = 'geometry_msgs/msg/Point', 'geometry_msgs/msg/PointStamped'

#: Callback groups: image and camera_info share ``inputs``; depth has its own, so a depth
#: image is stored while an image callback runs; commands and target changes apply in arrival
#: order (``commands``); correction clicks wait for the tracker in their own group (``clicks``);
#: requests, the action and diagnostics answer during a forward pass
#: (``control``, reentrant).
GROUPS: dict[str, str] = {
    'inputs': 'mutually_exclusive',
    'depth': 'mutually_exclusive',
    'commands': 'mutually_exclusive',
    'clicks': 'mutually_exclusive',
    'control': 'reentrant',
}

TOPICS: tuple[Topic, ...] = (
    Topic(
        'image',
        'sensor_msgs/msg/Image',
        'in',
        camera_qos,
        'image',
        'inputs',
        when=lambda s: not s.compressed_input,
        qos_events=True,
    ),
    Topic(
        'image/compressed',
        'sensor_msgs/msg/CompressedImage',
        'in',
        camera_qos,
        'compressed_image',
        'inputs',
        when=lambda s: s.compressed_input,
        qos_events=True,
    ),
    Topic('command', 'std_msgs/msg/String', 'in', command_qos, 'command', 'commands'),
    Topic('targets/add', 'std_msgs/msg/String', 'in', command_qos, 'target_add', 'commands'),
    Topic('targets/remove', 'std_msgs/msg/Int32', 'in', command_qos, 'target_remove', 'commands'),
    Topic('targets/clear', 'std_msgs/msg/Empty', 'in', command_qos, 'target_clear', 'commands'),
    # correction clicks (node.clicks): rqt_image_view's Point form and a stamped form
    Topic('click/positive', _POINT, 'in', command_qos, 'click_positive', 'clicks'),
    Topic('click/negative', _POINT, 'in', command_qos, 'click_negative', 'clicks'),
    Topic(
        'click/positive_stamped', _STAMPED, 'in', command_qos, 'click_positive_stamped', 'clicks'
    ),
    Topic(
        'click/negative_stamped', _STAMPED, 'in', command_qos, 'click_negative_stamped', 'clicks'
    ),
    Topic(
        'depth',
        'sensor_msgs/msg/Image',
        'in',
        depth_qos,
        'depth',
        'depth',
        when=lambda s: s.use_depth,
        qos_events=True,
    ),
    Topic(
        'camera_info',
        'sensor_msgs/msg/CameraInfo',
        'in',
        camera_qos,
        'camera_info',
        'inputs',
        when=lambda s: s.use_depth,
        qos_events=True,
    ),
    Topic('segmentation', 'evf_sam_msgs/msg/Segmentation', 'out', output_qos),
    Topic('segmentations', 'evf_sam_msgs/msg/SegmentationArray', 'out', output_qos),
    Topic('mask', 'sensor_msgs/msg/Image', 'out', output_qos),
    Topic('target_point', 'geometry_msgs/msg/PointStamped', 'out', output_qos),
    Topic('target_pose', 'geometry_msgs/msg/PoseStamped', 'out', output_qos),
    Topic('target_cloud', 'sensor_msgs/msg/PointCloud2', 'out', output_qos),
    Topic('markers', 'visualization_msgs/msg/MarkerArray', 'out', output_qos),
    Topic('grasps', 'evf_sam_msgs/msg/GraspCandidateArray', 'out', output_qos),
    Topic('overlay', 'sensor_msgs/msg/Image', 'out', output_qos),
    Topic('prompt', 'std_msgs/msg/String', 'out', latched_qos),
    Topic('targets', 'evf_sam_msgs/msg/TargetArray', 'out', latched_qos),
    Topic(
        '/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', 'out', output_qos, lifecycle=False
    ),
)

SERVICES: tuple[Service, ...] = (
    Service('~/segment', 'evf_sam_msgs/srv/Segment', 'segment', 'control'),
    Service('~/correct_target', 'evf_sam_msgs/srv/CorrectTarget', 'correct_target', 'control'),
    Service('~/add_target', 'evf_sam_msgs/srv/AddTarget', 'add_target', 'commands'),
    Service('~/remove_target', 'evf_sam_msgs/srv/RemoveTarget', 'remove_target', 'commands'),
    Service('~/clear_targets', 'std_srvs/srv/Trigger', 'clear_targets', 'commands'),
)

ACTIONS: tuple[Action, ...] = (
    Action(
        '~/find_target',
        'evf_sam_msgs/action/FindTarget',
        'find_target_goal',
        'find_target_execute',
        'control',
    ),
)


def interface_types() -> list[str]:
    """Every message, service and action type the node uses, in table order, once each."""
    names = [e.type for e in (*TOPICS, *SERVICES, *ACTIONS)]
    return list(dict.fromkeys(names))
