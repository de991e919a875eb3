"""Test helpers: start evf_sam_node as a user would (its console script, own process) and talk
to it with a real rclpy node over localhost DDS. Waits are on conditions, never fixed sleeps.

The node is the installed one of the package prefix the ament index names
(``evf_sam_ros.install_layout.executable``): ``lib/evf_sam_ros/`` of a colcon workspace (where
``ros2 run`` looks), or ``bin/`` of the development .venv (AMENT_PREFIX_PATH=.venv).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import rclpy
import yaml
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from evf_sam_ros.codecs.image import array_to_imgmsg
from evf_sam_ros.install_layout import executable


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = 'condition') -> Any:
    """Poll ``predicate`` until truthy; fail the test with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


@contextlib.contextmanager
def node_process(
    namespace: str,
    params: dict[str, Any],
    tmp: Path,
    extra_params: Sequence[Path] = (),
    remappings: Sequence[tuple[str, str]] = (),
) -> Iterator[subprocess.Popen]:
    """Run evf_sam_node in ``namespace`` with ``extra_params`` files, then ``params`` on top,
    and ``remappings`` (from, to) of its topics.
    """
    params_file = tmp / f'params_{uuid.uuid4().hex[:8]}.yaml'
    params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': params}}))
    cmd = [str(executable('evf_sam_node')), '--ros-args', '-r', f'__ns:={namespace}']
    for path in [*extra_params, params_file]:
        cmd += ['--params-file', str(path)]
    for old, new in remappings:
        cmd += ['-r', f'{old}:={new}']
    log = open(tmp / f'node_{namespace.strip("/")}.log', 'w')
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def node_log(tmp: Path, namespace: str) -> str:
    return (tmp / f'node_{namespace.strip("/")}.log').read_text()


def image_msg(
    stamp_s: int,
    h: int = 48,
    w: int = 64,
    frame: str = 'camera_optical',
    seed: int = 0,
    encoding: str = 'rgb8',
) -> Any:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    msg = array_to_imgmsg(rgb, encoding)
    msg.header.stamp.sec, msg.header.frame_id = stamp_s, frame
    return msg


class Client:
    """A test-side rclpy node spun on its own thread."""

    def __init__(self) -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node = Node(f'test_client_{uuid.uuid4().hex[:8]}')
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self._pubs: dict[str, Any] = {}

    def collect(self, msg_type: type, topic: str, latched: bool = False) -> list:
        """Subscribe; returns the list the messages are appended to."""
        got: list = []
        qos = (
            QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL) if latched else 100
        )
        self.node.create_subscription(msg_type, topic, got.append, qos)
        return got

    def publisher(self, msg_type: type, topic: str, depth: int = 10) -> Any:
        key = f'{topic}:{msg_type.__name__}'
        if key not in self._pubs:
            self._pubs[key] = self.node.create_publisher(msg_type, topic, depth)
        return self._pubs[key]

    def publish_when_matched(
        self, msg_type: type, topic: str, msg: Any, timeout: float = 10.0
    ) -> None:
        pub = self.publisher(msg_type, topic)
        wait_for(lambda: pub.get_subscription_count() > 0, timeout, f'a subscriber on {topic}')
        pub.publish(msg)

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 20.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            wait_for(lambda: client.service_is_ready(), timeout, f'service {name}')
            future = client.call_async(request)
            wait_for(future.done, timeout, f'an answer from {name}')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_params(self, node: str, **values: Any) -> list:
        """SetParameters on ``node``; returns the SetParametersResult list."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        req = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        return self.call(SetParameters, f'{node}/set_parameters', req).results

    def lifecycle_state(self, node: str) -> str:
        """The node's lifecycle state label; '' when it does not answer within 20 s (a
        node loading its model in its constructor, with autostart, answers only after).
        """
        from lifecycle_msgs.srv import GetState

        try:
            answer = self.call(GetState, f'{node}/get_state', GetState.Request())
        except AssertionError:
            return ''
        return answer.current_state.label

    def transition(self, node: str, transition_id: int) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        req = ChangeState.Request(transition=Transition(id=transition_id))
        return self.call(ChangeState, f'{node}/change_state', req, timeout=60.0).success

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(5)
        self.node.destroy_node()


def diagnostics_values(diags: list, node_name: str) -> dict[str, str] | None:
    """Key/values (plus 'level' and 'message') of the newest status from ``node_name``."""
    for array in reversed(list(diags)):
        for status in array.status:
            if status.name.startswith(node_name):
                values = {kv.key: kv.value for kv in status.values}
                values.update(
                    level=str(
                        status.level[0] if isinstance(status.level, bytes) else status.level
                    ),
                    message=status.message,
                )
                return values
    return None
