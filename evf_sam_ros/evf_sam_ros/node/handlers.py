"""The node's wiring: what each topic, service and action of ``node.interface`` calls, built
from the node's parts (its targets, inputs, stats, goals and IO). Called once by the node's
constructor; kept apart so that the node class holds the lifecycle and this module the
callbacks.
"""

from __future__ import annotations

from typing import Any

from evf_sam_ros.node.clicks import ClickInput
from evf_sam_ros.node.interface import Handlers
from evf_sam_ros.node.io import qos_advice
from evf_sam_ros.node.requests import FindTargetAction, SegmentService
from evf_sam_ros.node.target_control import TargetControl


def wire_handlers(node: Any) -> Handlers:
    """The Handlers of ``node`` (an EvfSamNode whose targets, stats, outputs, inputs and goals
    exist); sets ``node.control`` (the TargetControl the lifecycle uses too).
    """
    node.control = control = TargetControl(
        node.targets,
        node.stats,
        node.outputs,
        publish=lambda name, msg: node.io.publish(name, msg),
        has_subscribers=lambda name: node.io.has_subscribers(name),
        last_image=lambda: node.inputs.last_image,
        configured=lambda: node.predictor is not None,
        max_targets=lambda: node.settings.max_targets,
    )
    action = FindTargetAction(
        node, node.goals, lambda: node.settings.action_timeout, node.log_warning
    )
    clicks = ClickInput(
        lambda: node.segmenter,
        lambda: next((t.id for t in node.targets.snapshot()), None),
        node.stats.warn,
        lambda: node.stats.count('clicks_applied'),
        lambda: node.settings.target_settings(),
        lambda: node.inputs.last_image.header.frame_id if node.inputs.last_image else '',
    )
    return Handlers(
        image=node.inputs.on_image,
        compressed_image=node.inputs.on_compressed_image,
        depth=node.inputs.on_depth,
        camera_info=node.inputs.on_camera_info,
        command=control.on_command,
        target_add=control.on_add,
        target_remove=control.on_remove,
        target_clear=control.on_clear,
        incompatible_qos=lambda _: node.stats.warn('qos', qos_advice(node.settings)),
        click_positive=clicks.positive,
        click_negative=clicks.negative,
        click_positive_stamped=clicks.positive_stamped,
        click_negative_stamped=clicks.negative_stamped,
        segment=SegmentService(node, lambda: node.settings.service_timeout),
        correct_target=clicks.serve,
        add_target=control.add_service,
        remove_target=control.remove_service,
        clear_targets=control.clear_service,
        find_target_goal=action.on_goal,
        find_target_execute=action.execute,
    )
