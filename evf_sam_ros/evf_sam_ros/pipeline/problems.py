"""The one vocabulary of per-frame problems, shared by the node (/diagnostics ``problem.<kind>``)
and the replay (report.json ``warnings``).

A problem is a ``Problem(kind, message)``: ``kind`` is a stable key that is counted, ``message``
says what was wrong and what to do. Stages raise ``FrameProblem`` to stop a frame.
"""

from __future__ import annotations

from typing import NamedTuple

from evf_sam_ros.codecs.image import ConversionError, UnsupportedEncodingError

#: Every kind the frame pipeline reports, with its meaning (README: "How it behaves ...").
KINDS: dict[str, str] = {
    'bad_image': 'malformed image (size, step, data length, corrupt compressed data) or a size '
    'the model cannot take',
    'unsupported_encoding': 'an image encoding the node does not read',
    'prompt_rejected': 'a command or prompt refused (too long, unprintable, too many tokens)',
    'depth_missing': 'no depth image received (yet)',
    'depth_stamp_gap': 'the nearest depth image is further than depth_max_stamp_diff',
    'depth_frame_mismatch': "depth frame_id differs from the image's (depth not aligned)",
    'depth_size_mismatch': "depth size differs from the image's (depth not aligned)",
    'depth_unsupported_encoding': 'a depth encoding the node does not read',
    'depth_bad_image': 'malformed depth image',
    'depth_invalid': 'too little valid depth inside a found mask for a 3D point',
    'camera_info_missing': 'no camera_info received (yet): no 3D point',
    'camera_info_invalid': 'camera_info without a usable K (uncalibrated?)',
    'camera_info_scaled': 'camera_info is for another resolution; intrinsics were scaled',
    'click_unknown_target': 'a correction click on a target id that is not tracked (or none)',
    'click_outside_image': 'a correction click outside the clicked image',
    'click_frame_not_held': 'a correction click on a frame no longer held (click_frames), or '
    'before the target was (re-)grounded',
    'click_invalid': 'a correction click without points, with labels other than 0/1, or '
    'points and labels of different lengths',
    'click_not_tracking': 'a correction click in segment mode, unconfigured, or with '
    'click_frames 0',
    'click_backend': 'a correction click on a model running exported graphs (backend not torch)',
}


class Problem(NamedTuple):
    """One problem with one frame: ``kind`` (a key of KINDS, or a caller's own) and ``message``."""

    kind: str
    message: str


class FrameProblem(Exception):
    """A stage cannot go on with this frame; ``problem`` says why."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.problem = Problem(kind, message)


def conversion_problem(exc: ConversionError, what: str = 'image', prefix: str = '') -> Problem:
    """Problem of a failed image conversion: ``<prefix>unsupported_encoding`` for an encoding
    this role cannot use, else ``<prefix>bad_image`` (malformed message).
    """
    unsupported = isinstance(exc, UnsupportedEncodingError)
    kind = prefix + ('unsupported_encoding' if unsupported else 'bad_image')
    return Problem(kind, f'{what} dropped: {exc}')
