"""Every lifecycle transition from every state, valid and invalid, with ~/segment calls and a
find_target goal in flight at each: the node stays up, refuses what its state does not allow,
and answers every waiting request at once (never after service_timeout). Then Ctrl-C and
SIGTERM during inference: exit 0 within 2 s, no error logs. Real node process, real DDS.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rclpy.action import ActionClient
from ros_harness import Client, diagnostics_values, image_msg, node_log, node_process, wait_for
from sensor_msgs.msg import Image

from evf_sam_msgs.action import FindTarget
from evf_sam_msgs.srv import Segment
from evf_sam_ros.codecs.image import array_to_imgmsg

NS = '/lifecycle_all'
NODE = f'{NS}/evf_sam'
ORDER = ['unconfigured', 'inactive', 'active']
STEP = {
    ('unconfigured', 'inactive'): Transition.TRANSITION_CONFIGURE,
    ('inactive', 'active'): Transition.TRANSITION_ACTIVATE,
    ('active', 'inactive'): Transition.TRANSITION_DEACTIVATE,
    ('inactive', 'unconfigured'): Transition.TRANSITION_CLEANUP,
}
MOVES = {
    Transition.TRANSITION_CONFIGURE: 'configure',
    Transition.TRANSITION_CLEANUP: 'cleanup',
    Transition.TRANSITION_ACTIVATE: 'activate',
    Transition.TRANSITION_DEACTIVATE: 'deactivate',
}
SHUTDOWNS = {
    'unconfigured': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
    'inactive': Transition.TRANSITION_INACTIVE_SHUTDOWN,
    'active': Transition.TRANSITION_ACTIVE_SHUTDOWN,
}
VALID = {
    ('unconfigured', Transition.TRANSITION_CONFIGURE): 'inactive',
    ('inactive', Transition.TRANSITION_CLEANUP): 'unconfigured',
    ('inactive', Transition.TRANSITION_ACTIVATE): 'active',
    ('active', Transition.TRANSITION_DEACTIVATE): 'inactive',
}
BAD_LOG = (
    'Traceback',
    'inference failed',
    'Failed to publish',
    'terminate called',
    'RCLError',
    'InvalidHandle',
)
ANSWER_S = 10.0  # every waiting request must be answered well before service_timeout (60 s)


def _params(checkpoint) -> dict:
    return {
        'checkpoint': str(checkpoint),
        'score_threshold': 0.0,
        'prompt': 'the mug',
        'diagnostics_period': 0.3,
        'device': 'cpu',
    }


@pytest.fixture(scope='module')
def slow_checkpoint(tiny_checkpoint):
    return tiny_checkpoint('evf-sam2', image_size=1024)  # ~0.1 s a frame here, more for big images


@contextlib.contextmanager
def _running(client: Client, ns: str, checkpoint, tmp) -> Iterator:
    """The node in ``ns``, active; on exit: exit code 0 and no error in its log."""
    with node_process(ns, _params(checkpoint), tmp) as proc:
        wait_for(
            lambda: client.lifecycle_state(f'{ns}/evf_sam') == 'active', 60, 'the node to start'
        )
        yield proc
    assert proc.returncode == 0
    log = node_log(tmp, ns)
    assert not [bad for bad in BAD_LOG if bad in log], log[-3000:]


@pytest.fixture(scope='module')
def node(slow_checkpoint, tmp_path_factory, ros_client):
    with _running(ros_client, NS, slow_checkpoint, tmp_path_factory.mktemp('lc')) as proc:
        yield proc
        assert proc.poll() is None, 'the node died'


@dataclass
class InFlight:
    """~/segment calls and a find_target goal sent, not yet answered."""

    calls: list
    goal: Any
    action: ActionClient


def _send_requests(c: Client, node: str, calls: int = 3) -> InFlight:
    client = c.node.create_client(Segment, f'{node}/segment')
    wait_for(client.service_is_ready, 10, 'the segment service')
    big = array_to_imgmsg(
        np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), np.uint8), 'rgb8'
    )  # a slow request: the later ones wait in the worker's queue
    futures = [
        client.call_async(Segment.Request(prompt='the mug', image=big)) for _ in range(calls)
    ]
    action = ActionClient(c.node, FindTarget, f'{node}/find_target')
    wait_for(action.server_is_ready, 10, 'the find_target server')
    goal = FindTarget.Goal(prompt='the mug', min_hits=100000)
    goal.timeout.sec = 120
    return InFlight(futures, action.send_goal_async(goal), action)


def _all_answered(flight: InFlight, node_active: bool) -> None:
    """Every call answered within ANSWER_S; the goal rejected, ended, or (still active)
    canceled.
    """
    wait_for(
        lambda: all(f.done() for f in flight.calls) and flight.goal.done(),
        ANSWER_S,
        'answers to the requests in flight',
    )
    for future in flight.calls:
        response = future.result()
        assert response.success or response.message, 'a refusal always says why'
    handle = flight.goal.result()
    if handle.accepted:
        result = handle.get_result_async()
        if node_active:
            handle.cancel_goal_async()
        wait_for(result.done, ANSWER_S, 'the find_target goal to end')
    flight.action.destroy()


def _goto(c: Client, node: str, target: str) -> None:
    current = c.lifecycle_state(node)
    while current != target:
        step = 1 if ORDER.index(target) > ORDER.index(current) else -1
        following = ORDER[ORDER.index(current) + step]
        assert c.transition(node, STEP[(current, following)]), (current, following)
        current = c.lifecycle_state(node)


@pytest.mark.parametrize('state', ORDER)
@pytest.mark.parametrize('transition', list(MOVES))
def test_transition_with_requests_in_flight(node, ros_client, state, transition):
    c = ros_client
    _goto(c, NODE, state)
    flight = _send_requests(c, NODE)
    expected = VALID.get((state, transition))
    assert c.transition(NODE, transition) == (expected is not None), MOVES[transition]
    assert c.lifecycle_state(NODE) == (expected or state)
    _all_answered(flight, node_active=(expected or state) == 'active')
    assert node.poll() is None, f'{MOVES[transition]} from {state} killed the node'


@pytest.mark.parametrize('state', ORDER)
def test_shutdown_from_each_state_and_invalid_shutdowns(
    state, slow_checkpoint, ros_client, tmp_path
):
    c, ns = ros_client, f'/shutdown_{state}'
    with _running(c, ns, slow_checkpoint, tmp_path) as proc:
        name = f'{ns}/evf_sam'
        _goto(c, name, state)
        flight = _send_requests(c, name)
        for other, transition in SHUTDOWNS.items():
            if other != state:
                assert not c.transition(name, transition)  # not this state's shutdown
                assert c.lifecycle_state(name) == state
        assert c.transition(name, SHUTDOWNS[state])
        assert c.lifecycle_state(name) == 'finalized'
        _all_answered(flight, node_active=False)
        assert proc.poll() is None


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_during_inference_exits_cleanly_within_2s(
    sig, slow_checkpoint, ros_client, tmp_path
):
    c, ns = ros_client, f'/signal_{sig.name.lower()}'
    with _running(c, ns, slow_checkpoint, tmp_path) as proc:
        name = f'{ns}/evf_sam'
        diags = c.collect(DiagnosticArray, '/diagnostics')
        pub = c.publisher(Image, f'{ns}/image')
        wait_for(lambda: pub.get_subscription_count() > 0, 10, 'the image subscription')
        frames = [image_msg(i, h=1080, w=1920, seed=i) for i in range(3)]
        stop, busy = threading.Event(), threading.Event()

        def stream() -> None:  # keeps the worker in forward passes
            i = 0
            while not stop.is_set():
                pub.publish(frames[i % 3])
                i += 1
                busy.set()
                stop.wait(0.05)

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        assert busy.wait(5)
        wait_for(
            lambda: int((diagnostics_values(diags, name) or {}).get('frames_processed', 0)) >= 2,
            30,
            'the node to be busy with the stream',
        )
        start = time.monotonic()
        proc.send_signal(sig)
        proc.wait(10)
        elapsed = time.monotonic() - start
        stop.set()
        streamer.join(5)
    assert elapsed < 2.0, elapsed  # exit code 0 and a clean log: checked by _running
