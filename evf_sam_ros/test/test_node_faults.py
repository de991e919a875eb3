"""Faults found from outside, each against the real node process (real DDS): a missing message
package at configure is named with the command that installs it; an exception in a transition
is logged and reported on /diagnostics at level ERROR; the target services behave the same in
every state, refuse beyond ``max_targets`` and count every refusal; Ctrl-C from ``ros2 launch``
(SIGINT twice, to the process group and from launch) ends the node with exit code 0.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from ros_harness import diagnostics_values, image_msg, node_log, node_process, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import Int32

from evf_sam_msgs.srv import AddTarget, RemoveTarget

BAD_LOG = ('Traceback', 'RCLError', 'terminate called', 'InvalidHandle')

# A Python import hook that makes visualization_msgs unimportable, as on a robot whose install
# lacks that package (a fake of the install, not of the node: the node code runs unchanged).
_HIDE_PACKAGE = """
import sys

class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == {package!r}:
            raise ModuleNotFoundError(f'No module named {{name!r}}', name=name)
        return None

sys.meta_path.insert(0, _Hidden())
"""


def _params(checkpoint, **extra) -> dict:
    return {'checkpoint': str(checkpoint), 'device': 'cpu', 'diagnostics_period': 0.3, **extra}


def _status(diags: list, node: str) -> dict:
    return diagnostics_values(diags, node) or {}


def test_a_missing_message_package_is_named_at_configure(
    tiny_checkpoint, tmp_path, ros_client, monkeypatch
):
    hook = tmp_path / 'hook'
    hook.mkdir()
    (hook / 'sitecustomize.py').write_text(_HIDE_PACKAGE.format(package='visualization_msgs'))
    monkeypatch.setenv('PYTHONPATH', f'{hook}:{__import__("os").environ.get("PYTHONPATH", "")}')
    ns, c = '/missing_pkg', ros_client
    node = f'{ns}/evf_sam'
    diags = c.collect(DiagnosticArray, '/diagnostics')
    with node_process(ns, _params(tiny_checkpoint('evf-sam2')), tmp_path) as proc:
        wait_for(
            lambda: 'visualization_msgs' in _status(diags, node).get('message', ''),
            60,
            'the missing package on /diagnostics',
        )
        status = _status(diags, node)
        assert status['level'] == '2' and 'rosdep install' in status['message']
        assert c.lifecycle_state(node) == 'unconfigured'
        assert proc.poll() is None
    log = node_log(tmp_path, ns)
    assert proc.returncode == 0
    assert log.count('visualization_msgs/msg/MarkerArray') == 1, log  # logged once
    assert 'rosdep install' in log


def test_an_exception_in_a_transition_is_reported_and_an_error_on_diagnostics(
    tiny_checkpoint, ros_client
):
    """An exception inside the activate transition (injected into the node's own NodeIO: a
    fault no real input produces on demand): reported with its reason, counted, ERROR on
    /diagnostics, and the node back in unconfigured, alive, where configure works again. Then
    an exception inside a service callback (answered success=false with the reason) and inside
    an action's execute (the goal aborted with the reason), each counted,
    the executor spinning on. In-process EvfSamNode on real rclpy and DDS.
    """
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from evf_sam_ros.node.evf_sam_node import EvfSamNode

    ns, c = '/bad_activate', ros_client
    fqn = f'{ns}/evf_sam'
    params = _params(tiny_checkpoint('evf-sam2'), autostart=False)
    node = EvfSamNode(
        namespace=ns, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )
    diags = c.collect(DiagnosticArray, '/diagnostics')

    def broken(settings) -> None:
        raise RuntimeError('no subscriptions today')

    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        subscribe, node.io.subscribe = node.io.subscribe, broken
        assert c.transition(fqn, Transition.TRANSITION_CONFIGURE)
        assert not c.transition(fqn, Transition.TRANSITION_ACTIVATE)
        assert c.lifecycle_state(fqn) == 'unconfigured' and node.predictor is None
        assert node.error.startswith('activate failed: RuntimeError: no subscriptions today')
        status = wait_for(
            lambda: (lambda v: v if 'activate failed' in v.get('message', '') else None)(
                _status(diags, fqn)
            ),
            10,
            'the failed activation on /diagnostics',
        )
        assert status['level'] == '2' and status['problem.transition_error'] == '1'
        node.io.subscribe = subscribe
        assert c.transition(fqn, Transition.TRANSITION_CONFIGURE)
        assert c.transition(fqn, Transition.TRANSITION_ACTIVATE)
        assert node.error == ''

        def add(prompt: str):
            raise RuntimeError('a bug in a handler')

        node.control.add = add  # an exception inside a service callback
        answer = _add(c, fqn, 'the mug')
        assert not answer.success and 'RuntimeError: a bug in a handler' in answer.message
        wait_for(
            lambda: _status(diags, fqn).get('problem.callback_error') == '1',
            10,
            'the callback error counted',
        )
        assert c.lifecycle_state(fqn) == 'active' and thread.is_alive()
        node.goals.add = add  # and inside an action's execute callback: the goal is aborted
        result = _find_target(c, fqn)
        assert not result.found and 'RuntimeError: a bug in a handler' in result.message
        wait_for(lambda: _status(diags, fqn).get('problem.callback_error') == '2', 10)
    finally:
        node.stop()
        executor.shutdown()
        thread.join(5)
        node.destroy_node()


def _find_target(c, fqn: str):
    """Send a find_target goal (1 s timeout) and return its result."""
    from rclpy.action import ActionClient

    from evf_sam_msgs.action import FindTarget

    client = ActionClient(c.node, FindTarget, f'{fqn}/find_target')
    wait_for(lambda: client.server_is_ready(), 10, 'the find_target server')
    goal = FindTarget.Goal(prompt='the mug', min_hits=1)
    goal.timeout.sec = 1
    sent = client.send_goal_async(goal)
    wait_for(sent.done, 10, 'the goal answer')
    assert sent.result().accepted
    done = sent.result().get_result_async()
    wait_for(done.done, 10, 'the goal result')
    client.destroy()
    return done.result().result


@pytest.fixture(scope='module')
def idle_node(tiny_checkpoint, tmp_path_factory, ros_client):
    """A node started without autostart (unconfigured), max_targets 2."""
    tmp = tmp_path_factory.mktemp('targets_by_state')
    ns = '/targets_by_state'
    params = _params(tiny_checkpoint('evf-sam2'), autostart=False, max_targets=2)
    diags = ros_client.collect(DiagnosticArray, '/diagnostics')
    with node_process(ns, params, tmp) as proc:
        node = f'{ns}/evf_sam'
        wait_for(lambda: ros_client.lifecycle_state(node) == 'unconfigured', 30, 'the node')
        yield ns, node, diags
        assert proc.poll() is None
    assert proc.returncode == 0 and 'Traceback' not in node_log(tmp, ns)


def _add(c, node: str, prompt: str):
    return c.call(AddTarget, f'{node}/add_target', AddTarget.Request(prompt=prompt))


def test_target_services_in_every_state_max_targets_and_refusals_counted(idle_node, ros_client):
    ns, node, diags = idle_node
    c = ros_client
    refused = _add(c, node, 'the mug')
    assert not refused.success and 'unconfigured' in refused.message
    assert c.transition(node, Transition.TRANSITION_CONFIGURE)
    first = _add(c, node, 'the mug')  # inactive: the list can be prepared before activating
    assert first.success and first.target_id >= 0
    assert _add(c, node, 'the plate').success
    full = _add(c, node, 'the fork')
    assert not full.success and 'max_targets' in full.message and '2' in full.message
    gone = c.call(RemoveTarget, f'{node}/remove_target', RemoveTarget.Request(target_id=999))
    assert not gone.success and 'no target with id 999' in gone.message
    assert c.transition(node, Transition.TRANSITION_ACTIVATE)
    c.publish_when_matched(Int32, f'{ns}/targets/remove', Int32(data=998))  # unknown id
    wait_for(
        lambda: _status(diags, node).get('problem.target_refused') == '4',
        10,
        'four refused target requests counted',
    )
    assert c.transition(node, Transition.TRANSITION_DEACTIVATE)
    assert c.transition(node, Transition.TRANSITION_CLEANUP)


@pytest.mark.parametrize('gap_s', [0.05, 0.3])
def test_ctrl_c_from_launch_sigint_twice_exits_cleanly(
    gap_s, tiny_checkpoint, tmp_path, ros_client
):
    """``ros2 launch`` on Ctrl-C: the terminal's SIGINT reaches the whole process group, then
    launch sends its own. During the first inference (the worker busy, so the second signal
    lands while the node shuts down): exit code 0 and no error, at either gap.
    """
    ns = f'/double_sigint_{int(gap_s * 1000)}'
    node, c = f'{ns}/evf_sam', ros_client
    checkpoint = tiny_checkpoint('evf-sam2', image_size=1024)  # ~0.1 s or more a frame
    params = _params(checkpoint, prompt='the mug', use_depth=False)
    diags = c.collect(DiagnosticArray, '/diagnostics')
    with node_process(ns, params, tmp_path) as proc:
        wait_for(lambda: c.lifecycle_state(node) == 'active', 60, 'the node to start')
        c.publish_when_matched(Image, f'{ns}/image', image_msg(1, h=240, w=320))
        wait_for(
            lambda: int(_status(diags, node).get('frames_received', 0)) >= 1,
            10,
            'the first frame to reach the worker (its first inference takes seconds here)',
        )
        proc.send_signal(signal.SIGINT)
        time.sleep(gap_s)  # the gap under test, not a handshake
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0, node_log(tmp_path, ns)
    log = node_log(tmp_path, ns)
    assert not [bad for bad in BAD_LOG + ('KeyboardInterrupt',) if bad in log], log
