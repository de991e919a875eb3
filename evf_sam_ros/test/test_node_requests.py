"""The ~/segment and ~/find_target handlers without a node: they depend on a small Protocol
(RequestBackend) and a Future, so their timeouts and refusals are tested directly. The
backend here is this test's own implementation of that Protocol (not a mock of ROS): the
service and action messages are the real evf_sam_msgs classes.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
from geometry_msgs.msg import Point
from ros_harness import image_msg

from evf_sam_msgs.msg import Segmentation
from evf_sam_msgs.srv import Segment
from evf_sam_ros.model.errors import PromptError
from evf_sam_ros.node.goals import GoalTracker
from evf_sam_ros.node.requests import GoalRegistry, RequestRefused, SegmentService, has_image
from evf_sam_ros.pipeline import check_prompt


class Backend:
    """A RequestBackend whose futures the test completes (or never completes)."""

    def __init__(self, active: bool = True):
        self.active = active
        self.futures: list[concurrent.futures.Future] = []
        self.images: list = []
        self.clicks: list = []

    def state_label(self) -> str:
        return 'active' if self.active else 'inactive'

    def validate_prompt(self, text: str) -> str:
        return check_prompt(text, 100)

    def segment_async(self, prompt: str, image, clicks=None):
        if not self.active:
            raise RequestRefused(f'node is {self.state_label()}, not active')
        self.validate_prompt(prompt)
        self.images.append(image)
        self.clicks.append(clicks)
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.futures.append(future)
        return future


def _call(service: SegmentService, prompt: str = 'the mug', image=None):
    request = Segment.Request(prompt=prompt)
    if image is not None:
        request.image = image
    return service(request, Segment.Response())


def test_service_times_out_with_a_reason_when_no_answer_comes():
    service = SegmentService(Backend(), lambda: 0.2)
    start = time.monotonic()
    response = _call(service)
    assert not response.success and 'timed out after 0.2 s' in response.message
    assert 0.15 < time.monotonic() - start < 5.0


def test_service_answers_at_once_when_the_request_is_abandoned():
    backend = Backend()
    service = SegmentService(backend, lambda: 60.0)
    threading.Timer(
        0.05, lambda: backend.futures[0].set_exception(RequestRefused('node deactivated'))
    ).start()
    start = time.monotonic()
    response = _call(service)
    assert not response.success and response.message == 'node deactivated'
    assert time.monotonic() - start < 5.0  # not the 60 s timeout


def test_service_success_refusals_and_the_newest_frame():
    backend = Backend()
    service = SegmentService(backend, lambda: 5.0)
    threading.Timer(
        0.05, lambda: backend.futures[0].set_result(Segmentation(prompt='the mug'))
    ).start()
    response = _call(service, image=image_msg(3))
    assert response.success and response.result.prompt == 'the mug'
    assert backend.images[0].header.stamp.sec == 3 and backend.clicks[0] is None
    clicked = Segment.Request(prompt='the mug', points=[Point(x=3.0, y=4.0)], labels=[0])
    threading.Timer(
        0.05, lambda: backend.futures[1].set_result(Segmentation(prompt='the mug'))
    ).start()
    assert service(clicked, Segment.Response()).success
    assert backend.clicks[1] == ([[3.0, 4.0]], [0])  # checked against the image later
    assert not _call(service, prompt='  ').success  # empty prompt: PromptError, at once
    backend.active = False
    refused = _call(service)
    assert not refused.success and 'inactive' in refused.message
    assert not has_image(Segment.Request().image) and has_image(image_msg(1))


def test_goal_verdicts_hits_timeout_cancel_and_failure():
    now = [0.0]
    tracker = GoalTracker('the mug', timeout_s=2.0, min_hits=2, clock=lambda: now[0])
    assert tracker.verdict(False, True) is None
    tracker.add(Segmentation(found=True, score=0.7))
    tracker.add(Segmentation(found=False, score=0.9))
    assert tracker.verdict(False, True) is None and tracker.best.score == pytest.approx(0.7)
    assert tracker.verdict(True, True) == ('canceled', 'canceled')
    now[0] = 2.5
    status, message = tracker.verdict(False, True)
    assert status == 'aborted' and 'not found within 2.0 s (2 frames processed)' in message
    tracker.add(Segmentation(found=True, score=0.8))
    assert tracker.verdict(False, True)[0] == 'succeeded'
    failed = GoalTracker('the cup', 30.0, 1)
    registry = GoalRegistry()
    registry.add(failed)
    assert registry.prompts() == ['the cup']
    waiter = threading.Thread(target=failed.wait_feedback, args=(30.0,))
    start = time.monotonic()
    waiter.start()
    registry.fail_all('node cleaned up')
    waiter.join(5.0)
    assert not waiter.is_alive() and time.monotonic() - start < 5.0  # woken at once
    assert failed.verdict(False, True) == ('aborted', 'node cleaned up (0 frames processed)')


def test_prompt_checks_are_shared():
    assert check_prompt('  the   red\tmug ', 100) == 'the red mug'
    with pytest.raises(PromptError, match='max_prompt_chars'):
        check_prompt('x' * 101, 100)
    with pytest.raises(PromptError, match='non-printable'):
        check_prompt('\x07bell', 100)
