"""The ROS-free frame pipeline the node and the replay share.

decode (``SourceImage``) -> targets (``check_prompt``, ``TargetList``) -> model ->
depth and intrinsics (``depth_input`` via a ``DepthSource``) -> target decision and 3D point
-> result messages (``process_frame``), with one problem vocabulary (``Problem``, ``KINDS``).
Messages are duck-typed (rclpy or rosbags objects); rclpy itself is never imported here.
"""

from evf_sam_ros.model.tokenizer import normalize_prompt
from evf_sam_ros.pipeline.depth import (
    BufferedDepth,
    ChosenDepth,
    DepthInput,
    DepthSource,
    StampedBuffer,
    depth_input,
    nearest_by_stamp,
)
from evf_sam_ros.pipeline.frame import (
    BAD_IMAGE,
    NO_PROMPT,
    PROCESSED,
    BoxMemory,
    FrameOutput,
    Segmenter,
    TargetOutput,
    predictor_segmenter,
    process_frame,
)
from evf_sam_ros.pipeline.outputs import FrameMessages
from evf_sam_ros.pipeline.problems import KINDS, FrameProblem, Problem, conversion_problem
from evf_sam_ros.pipeline.prompts import ONE_SHOT, NamedTarget, TargetList, check_prompt
from evf_sam_ros.pipeline.source import SourceImage

__all__ = [
    'BAD_IMAGE',
    'BoxMemory',
    'BufferedDepth',
    'ChosenDepth',
    'DepthInput',
    'DepthSource',
    'FrameMessages',
    'FrameOutput',
    'FrameProblem',
    'KINDS',
    'NO_PROMPT',
    'NamedTarget',
    'ONE_SHOT',
    'PROCESSED',
    'Problem',
    'Segmenter',
    'SourceImage',
    'StampedBuffer',
    'TargetList',
    'TargetOutput',
    'check_prompt',
    'conversion_problem',
    'depth_input',
    'nearest_by_stamp',
    'normalize_prompt',
    'predictor_segmenter',
    'process_frame',
]
