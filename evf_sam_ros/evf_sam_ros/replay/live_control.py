"""Live mode's conversation with the running evf_sam node: finding it, setting its targets and
prompt, and reading its /diagnostics counters (frames handled, problems counted).

Everything here goes through a ``live_ros.ReplayNode``; ``live`` plays the bag with it.
"""

from __future__ import annotations

import time

from evf_sam_ros.pipeline import normalize_prompt
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.live_ros import LiveRecording, ReplayNode, topic_name, wait_until


def connect(ros: ReplayNode, namespace: str, wait_s: float) -> None:
    """Wait (up to ``wait_s`` each) for the node's image subscription and outputs, then
    subscribe to them.  Raises ReplayError when the node is not found.
    """
    image = ros.publishers['image']
    if not wait_until(lambda: image.get_subscription_count() > 0, wait_s):
        raise ReplayError(
            f'no node subscribed to {image.topic_name} within '
            f'{wait_s:g} s; start evf_sam_node (namespace '
            f'{namespace or "/"}) first'
        )
    seg_topic = topic_name(namespace, 'segmentation')
    if not wait_until(lambda: ros.node.count_publishers(seg_topic) > 0, wait_s):
        raise ReplayError(f'nothing publishes {seg_topic}; is the node configured and active?')
    ros.subscribe_outputs()
    if not wait_until(ros.outputs_matched, 10.0):
        raise ReplayError(f'could not connect to {seg_topic} (incompatible QoS?)')


def send_prompt(
    ros: ReplayNode, text: str, recording: LiveRecording, timeout_s: float = 10.0
) -> None:
    """Send a command and wait until the node has taken it: it echoes an accepted one on
    ``prompt``, and counts every command on /diagnostics (a refused one too). Until the first
    command is confirmed it is resent every 0.5 s (one sent while discovery is still
    completing can be lost, and a lost prompt would leave every frame unprocessed); after
    that the reliable, keep-all topic delivers each command once, so none is repeated (a
    repeated refused command would be counted twice).
    """
    from std_msgs.msg import String

    command = ros.publishers['command']
    wait_until(lambda: command.get_subscription_count() > 0, timeout_s)
    echo = normalize_prompt(text)  # as the node does
    before = len(ros.prompts_seen())
    deadline = time.monotonic() + timeout_s
    while True:
        sent = time.monotonic_ns()
        command.publish(String(data=text))
        recording.commands_sent += 1
        target = recording.commands_before + recording.commands_sent

        def taken() -> bool:
            counted = ros.diagnostics(after_ns=sent)
            return echo in ros.prompts_seen()[before:] or (
                counted is not None and int(counted.get('commands', 0)) >= target
            )

        if wait_until(taken, timeout_s if recording.command_confirmed else 0.5):
            recording.command_confirmed = True
            return
        if recording.command_confirmed or time.monotonic() >= deadline:
            recording.warnings.append(
                ('prompt_not_confirmed', f'the node did not take the command {text!r}')
            )
            return
        recording.commands_sent -= 1  # lost in discovery: resent


def check_mode(ros: ReplayNode, mode: str) -> None:
    """ReplayError unless the node's ``mode`` parameter is ``mode``."""
    from rcl_interfaces.srv import GetParameters

    answer = ros.call(
        'evf_sam/get_parameters', GetParameters, GetParameters.Request(names=['mode']), 10.0
    )
    running = answer.values[0].string_value if answer.values else ''
    if running != mode:
        raise ReplayError(
            f'the node runs in {running or "an unknown"} mode, not {mode}; '
            f'start it with mode:={mode} (a configure-time parameter)'
        )


def set_targets(ros: ReplayNode, prompts: tuple[str, ...], timeout_s: float = 10.0) -> None:
    """The node's targets become exactly ``prompts`` (as offline mode's --prompt targets):
    ~/clear_targets, then ~/add_target for each. Raises ReplayError when refused.
    """
    from std_srvs.srv import Trigger

    from evf_sam_msgs.srv import AddTarget

    ros.call('evf_sam/clear_targets', Trigger, Trigger.Request(), timeout_s)
    for prompt in prompts:
        answer = ros.call(
            'evf_sam/add_target', AddTarget, AddTarget.Request(prompt=prompt), timeout_s
        )
        if not answer.success:
            raise ReplayError(f'the node refused --prompt {prompt!r}: {answer.message}')


def handled_count(values: dict[str, str] | None) -> int:
    """Frames the node has finished with, by its /diagnostics counters (-1 when unknown)."""
    if values is None:
        return -1
    keys = ('frames_processed', 'frames_bad', 'frames_skipped_no_prompt')
    return sum(int(values.get(k, 0)) for k in keys)


def _problem_counts(values: dict[str, str]) -> dict[str, int]:
    return {k[len('problem.') :]: int(v) for k, v in values.items() if k.startswith('problem.')}


def diagnostics_baseline(ros: ReplayNode, recording: LiveRecording) -> dict[str, str] | None:
    """The node's /diagnostics before playing (its counters so far), None if it sends none."""
    values = ros.diagnostics() if wait_until(lambda: ros.diagnostics() is not None, 5.0) else None
    if values is None:
        recording.warnings.append(
            (
                'no_diagnostics',
                'the node sent no /diagnostics: its problem counts are not in this report',
            )
        )
    recording.handled_before = max(handled_count(values), 0)
    recording.commands_before = int(values.get('commands', 0)) if values else 0
    return values


def node_problems(
    ros: ReplayNode, recording: LiveRecording, baseline: dict[str, str] | None, timeout_s: float
) -> None:
    """Problems the node counted while the bag played: its /diagnostics after the last
    output (the next message it sends) minus the baseline.
    """
    if baseline is None:
        return
    ended = time.monotonic_ns()
    if not wait_until(lambda: ros.diagnostics(after_ns=ended) is not None, timeout_s):
        recording.warnings.append(('no_diagnostics', 'no /diagnostics after the run'))
        return
    before, after = _problem_counts(baseline), _problem_counts(ros.diagnostics(after_ns=ended))
    recording.node_problems = {k: n - before.get(k, 0) for k, n in after.items()}
