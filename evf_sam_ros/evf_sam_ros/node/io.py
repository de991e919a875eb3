"""The node's topics: subscriptions (created on activate) and lifecycle publishers (created
on configure), with their QoS. Relative names, remapped at launch (README "Topics").
"""

from __future__ import annotations

from typing import Any

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: History depth of the output publishers (a consumer that falls behind loses old results).
OUTPUT_HISTORY_DEPTH = 10
#: Depth images kept in the subscription's queue: with a history of 1, a depth image the
#: executor has not taken yet is replaced by the next one, and its colour image then finds
#: only a neighbour 1/fps away (seen under CPU load at 5 Hz).
DEPTH_HISTORY_DEPTH = 5


class NodeIO:
    """Creates and destroys the node's subscriptions and publishers; callbacks only hand
    messages to the node (``on_image``, ``depth.add``, ``on_camera_info``, ``on_command``).

    groups: image and camera_info share ``inputs``; depth has its own group so a depth image
    is stored while an image callback runs; commands apply in arrival order (``commands``).
    """

    def __init__(self, node: Any, inputs: Any, depth: Any, commands: Any):
        self.node = node
        self._groups = {'inputs': inputs, 'depth': depth, 'commands': commands}
        self._subs: list[Any] = []
        self._inputs: dict[str, Any] = {}  # depth and camera_info subscriptions
        self._pubs: dict[str, Any] = {}

    # ---- publishers ------------------------------------------------------------------
    def create_publishers(self) -> None:
        """Lifecycle publishers of every output (they publish only while active)."""
        from geometry_msgs.msg import PointStamped, PoseStamped
        from sensor_msgs.msg import Image, PointCloud2
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        from evf_sam_msgs.msg import (
            GraspCandidateArray,
            Segmentation,
            SegmentationArray,
            TargetArray,
        )

        node = self.node
        for name, msg_type in (
            ('mask', Image),
            ('overlay', Image),
            ('segmentation', Segmentation),
            ('target_point', PointStamped),
            ('segmentations', SegmentationArray),
            ('target_pose', PoseStamped),
            ('target_cloud', PointCloud2),
            ('markers', MarkerArray),
            ('grasps', GraspCandidateArray),
        ):
            self._pubs[name] = node.create_lifecycle_publisher(
                msg_type, name, OUTPUT_HISTORY_DEPTH
            )
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pubs['prompt'] = node.create_lifecycle_publisher(String, 'prompt', latched)
        self._pubs['targets'] = node.create_lifecycle_publisher(TargetArray, 'targets', latched)

    def destroy_publishers(self) -> None:
        """Remove every output publisher (cleanup)."""
        for pub in self._pubs.values():
            self.node.destroy_lifecycle_publisher(pub)
        self._pubs = {}

    def publish(self, name: str, msg: Any) -> None:
        """Publish on output ``name`` if it exists (configured)."""
        pub = self._pubs.get(name)
        if pub is not None:
            pub.publish(msg)

    def has_subscribers(self, name: str) -> bool:
        """True when someone subscribes to output ``name``."""
        pub = self._pubs.get(name)
        return pub is not None and pub.get_subscription_count() > 0

    def publish_targets(self, targets: Any) -> None:
        """Announce the targets: the primary prompt on ``prompt`` and the whole list on
        ``targets`` (both latched).
        """
        from std_msgs.msg import String

        from evf_sam_msgs.msg import Target, TargetArray

        self.publish('prompt', String(data=targets.primary_prompt))
        self.publish(
            'targets',
            TargetArray(targets=[Target(id=t.id, prompt=t.prompt) for t in targets.snapshot()]),
        )

    # ---- subscriptions ---------------------------------------------------------------
    def subscribe(self) -> None:
        """Subscribe to the inputs the settings ask for (activate)."""
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image
        from std_msgs.msg import String

        node, s, groups = self.node, self.node.settings, self._groups
        reliability = (
            ReliabilityPolicy.RELIABLE
            if s.image_qos_reliability == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT
        )
        qos = QoSProfile(depth=int(s.image_qos_depth), reliability=reliability)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        kw = dict(callback_group=groups['inputs'], event_callbacks=events)
        if s.compressed_input:
            self._add(
                CompressedImage, 'image/compressed', lambda m: node.on_image(m, True), qos, **kw
            )
        else:
            self._add(Image, 'image', lambda m: node.on_image(m, False), qos, **kw)
        if s.use_depth:
            depth_qos = QoSProfile(
                depth=max(DEPTH_HISTORY_DEPTH, int(s.image_qos_depth)), reliability=reliability
            )
            self._inputs['depth'] = self._add(
                Image,
                'depth',
                node.depth.add,
                depth_qos,
                callback_group=groups['depth'],
                event_callbacks=events,
            )
            self._inputs['camera_info'] = self._add(
                CameraInfo, 'camera_info', node.on_camera_info, qos, **kw
            )
        commands_qos = QoSProfile(
            history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE
        )
        self._add(
            String,
            'command',
            lambda m: node.on_command(m.data),
            commands_qos,
            callback_group=groups['commands'],
        )
        for msg_type, topic, callback in node.target_control.subscriptions(commands_qos):
            self._add(msg_type, topic, callback, commands_qos, callback_group=groups['commands'])

    def _add(self, msg_type: type, topic: str, callback: Any, qos: Any, **kw: Any) -> Any:
        sub = self.node.create_subscription(msg_type, topic, callback, qos, **kw)
        self._subs.append(sub)
        return sub

    def unsubscribe(self) -> None:
        """Remove every subscription (deactivate)."""
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs, self._inputs = [], {}

    def publisher_present(self, name: str) -> bool:
        """True when something publishes on input ``name`` ('depth' or 'camera_info'); then a
        late message is worth waiting for.
        """
        sub = self._inputs.get(name)
        return sub is not None and self.node.count_publishers(sub.topic_name) > 0

    def _on_incompatible_qos(self, event: Any) -> None:
        self.node.warnings.warn(
            'qos',
            "an input publisher's QoS is incompatible with this subscription "
            f'(image_qos.reliability={self.node.settings.image_qos_reliability}); for '
            'best-effort cameras set image_qos.reliability: best_effort',
        )
