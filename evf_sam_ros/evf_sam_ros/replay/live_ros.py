"""The replay's own ROS node for live mode: publishers into an evf_sam node, raw
subscriptions recording its outputs with their arrival times.

rclpy is imported only when a ``ReplayNode`` is made; it runs in its own ``rclpy.Context``
and executor thread, both shut down by ``close``.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

_POLL_S = 0.02


@dataclass
class LiveRecording:
    """What the node sent back.  Keys are header stamps (ns); times are time.monotonic_ns().

    published: stamp -> when the frame went out. outputs: role ("segmentation", "mask",
    "target_point") -> stamp -> [(arrival time, CDR bytes)]. node_problems: problems the node
    counted on /diagnostics during the run (kind -> count).
    """

    published: dict[int, int] = field(default_factory=dict)
    outputs: dict[str, dict[int, list[tuple[int, bytes]]]] = field(
        default_factory=lambda: collections.defaultdict(lambda: collections.defaultdict(list))
    )
    warnings: list[tuple[str, str]] = field(default_factory=list)
    frames_published: int = 0
    handled_before: int = 0
    commands_before: int = 0
    commands_sent: int = 0
    command_confirmed: bool = False
    node_problems: dict[str, int] = field(default_factory=dict)


def topic_name(namespace: str, name: str) -> str:
    """Absolute topic of the node's relative topic ``name`` under ``namespace``."""
    namespace = '/' + namespace.strip('/') if namespace.strip('/') else ''
    return f'{namespace}/{name}'


class ReplayNode:
    """The replay's own node: publishers to the evf_sam node, raw subscriptions to its outputs."""

    def __init__(self, namespace: str, recording: LiveRecording):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String

        self.namespace, self.recording = namespace, recording
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        try:
            self.node = rclpy.create_node('evf_sam_replay', context=self.context)
        except BaseException:
            rclpy.shutdown(context=self.context)
            raise
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publishers = {
            role: self.node.create_publisher(t, topic_name(namespace, role), reliable)
            for role, t in (
                ('image', Image),
                ('depth', Image),
                ('camera_info', CameraInfo),
                ('command', String),
            )
        }
        self._lock = threading.Lock()
        self._prompts: list[str] = []
        self._diagnostics: list[tuple[int, dict[str, str]]] = []  # (arrival ns, values)
        self.subscriptions: list[Any] = []
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def call(self, name: str, srv_type: type, request: Any, timeout_s: float) -> Any:
        """Call the node's service ``name`` (relative to the namespace); ReplayError when it
        is not there or does not answer within ``timeout_s``.
        """
        from evf_sam_ros.replay.errors import ReplayError

        client = self.node.create_client(srv_type, topic_name(self.namespace, name))
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                raise ReplayError(f'service {client.srv_name} not found; is evf_sam_node running?')
            future = client.call_async(request)
            if not wait_until(future.done, timeout_s):
                raise ReplayError(f'service {client.srv_name} did not answer in {timeout_s:g} s')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def subscribe_outputs(self) -> None:
        """Raw subscriptions to segmentation/mask/target_point and one to the prompt echo."""
        from geometry_msgs.msg import PointStamped, PoseStamped
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        from evf_sam_msgs.msg import GraspCandidateArray, Segmentation, SegmentationArray

        for role, msg_type in (
            ('segmentation', Segmentation),
            ('mask', Image),
            ('target_point', PointStamped),
            ('segmentations', SegmentationArray),
            ('target_pose', PoseStamped),
            ('target_cloud', PointCloud2),
            ('markers', MarkerArray),
            ('grasps', GraspCandidateArray),
        ):
            topic = topic_name(self.namespace, role)
            qos = QoSProfile(depth=100, reliability=self._publisher_reliability(topic))
            self.subscriptions.append(
                self.node.create_subscription(msg_type, topic, self._recorder(role), qos, raw=True)
            )
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.subscriptions.append(
            self.node.create_subscription(
                String, topic_name(self.namespace, 'prompt'), self._on_prompt, latched
            )
        )
        from diagnostic_msgs.msg import DiagnosticArray

        self.subscriptions.append(
            self.node.create_subscription(
                DiagnosticArray, '/diagnostics', self._on_diagnostics, 10
            )
        )

    def _publisher_reliability(self, topic: str) -> Any:
        """Match the node's publisher: best effort only when it offers nothing better."""
        from rclpy.qos import ReliabilityPolicy

        infos = self.node.get_publishers_info_by_topic(topic)
        if infos and all(
            i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos
        ):
            return ReliabilityPolicy.BEST_EFFORT
        return ReliabilityPolicy.RELIABLE

    def _recorder(self, role: str) -> Callable[[bytes], None]:
        # a MarkerArray has no header of its own: its first marker's (after the length)
        offset = 4 if role == 'markers' else 0

        def record(raw: bytes) -> None:
            arrived = time.monotonic_ns()
            if len(raw) < 12 + offset:
                return  # an empty MarkerArray: nothing of a frame
            with self._lock:
                self.recording.outputs[role][cdr_stamp_ns(raw, offset)].append((arrived, raw))

        return record

    def _on_prompt(self, msg: Any) -> None:
        with self._lock:
            self._prompts.append(str(msg.data))

    def _on_diagnostics(self, msg: Any) -> None:
        prefix = topic_name(self.namespace, '')
        for status in msg.status:
            if (
                status.name.startswith(prefix)
                and status.name.endswith(': text segmentation')
                and status.name[len(prefix) :].count('/') == 0
            ):
                values = {kv.key: kv.value for kv in status.values}
                with self._lock:
                    self._diagnostics.append((time.monotonic_ns(), values))

    def diagnostics(self, after_ns: int = 0) -> dict[str, str] | None:
        """The node's newest /diagnostics values received after ``after_ns`` (None if none)."""
        with self._lock:
            fresh = [v for t, v in self._diagnostics if t > after_ns]
        return fresh[-1] if fresh else None

    def prompts_seen(self) -> list[str]:
        """Every prompt the node has echoed on ``prompt`` so far."""
        with self._lock:
            return list(self._prompts)

    def outputs_matched(self) -> bool:
        """True once the segmentation subscription is matched with the node's publisher."""
        sub = self.subscriptions[0]
        if hasattr(sub, 'get_publisher_count'):
            return sub.get_publisher_count() > 0
        return self.node.count_publishers(sub.topic_name) > 0  # Humble: graph count only

    def close(self) -> None:
        """Stop spinning, join the thread, then shut rclpy down (in that order)."""
        import rclpy

        self.executor.shutdown()
        self._thread.join(timeout=10.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def cdr_stamp_ns(raw: bytes, offset: int = 0) -> int:
    """Header stamp (ns) of a CDR message whose first field is a std_msgs/Header (read from
    the bytes after the 4-byte encapsulation header, plus ``offset``: int32 sec, uint32
    nanosec).
    """
    order = 'little' if raw[1] & 1 else 'big'
    at = 4 + offset
    sec = int.from_bytes(raw[at : at + 4], order, signed=True)
    return sec * 1_000_000_000 + int.from_bytes(raw[at + 4 : at + 8], order)


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(_POLL_S)
    return condition()
