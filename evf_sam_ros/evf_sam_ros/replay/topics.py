"""Which bag topics hold the colour image, depth, camera_info, prompts and ground truth.

Each role is given by name, auto-detected (``None``), or switched off (``"none"``).
Auto-detection only picks a topic when exactly one candidate fits; otherwise the role is
left empty with a note (optional roles) or a ``ReplayError`` lists the candidates (image).
Candidates that are image_transport transports of one topic (``<base>``,
``<base>/compressed``, ``<base>/compressedDepth``) count as one: the raw ``<base>`` is
used when recorded (lossless, nothing to decode), else compressedDepth, else compressed.
Depth may be a sensor_msgs/Image or a CompressedImage (compressedDepth).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evf_sam_ros.replay.bagio import CAMERA_INFO, IMAGE, IMAGE_TYPES, STRING, TopicInfo
from evf_sam_ros.replay.errors import ReplayError

#: Pass this as a topic to switch a role off.
NONE = 'none'
_DEPTH_RE = re.compile(r'depth', re.IGNORECASE)
_GT_RE = re.compile(r'ground_?truth|(^|/)gt(_mask)?(/|$)', re.IGNORECASE)
_OUTPUT_RE = re.compile(r'mask|segmentation|overlay|debug', re.IGNORECASE)
_COMMAND_RE = re.compile(r'(command|prompt)$', re.IGNORECASE)
#: image_transport transport suffixes, in order of preference after the raw topic.
_TRANSPORTS = ('/compressedDepth', '/compressed')


@dataclass(frozen=True)
class TopicSelection:
    """Topics used for each role (None = not used) and notes on how they were chosen.

    image_type is sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage (so may depth's
    type be; each message's type comes with it from the bag).
    """

    image: str
    image_type: str
    depth: str | None = None
    camera_info: str | None = None
    command: str | None = None
    ground_truth: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, str | None]:
        """Role -> topic, for the report."""
        return {
            'image': self.image,
            'depth': self.depth,
            'camera_info': self.camera_info,
            'command': self.command,
            'ground_truth': self.ground_truth,
        }


def _listing(topics: dict[str, TopicInfo], types: tuple[str, ...] = ()) -> str:
    rows = [
        f'{t.name} ({t.msgtype}, {t.count} msgs)'
        for t in topics.values()
        if not types or t.msgtype in types
    ]
    return ', '.join(rows) if rows else '(none)'


def _base_topic(name: str) -> str:
    """The topic ``name`` is an image_transport transport of (itself when raw)."""
    for suffix in _TRANSPORTS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _one_per_transport(candidates: list[str]) -> list[str]:
    """``candidates`` with each image_transport family reduced to its preferred member
    (raw, then compressedDepth, then compressed), in first-seen order.
    """
    rank = {'': 0, **{suffix: i + 1 for i, suffix in enumerate(_TRANSPORTS)}}
    best: dict[str, str] = {}
    for name in candidates:
        base = _base_topic(name)
        if base not in best or rank[name[len(base) :]] < rank[best[base][len(base) :]]:
            best[base] = name
    return list(best.values())


def _spellings(name: str) -> list[str]:
    """``name`` as given, then with the leading slash toggled (ROS 1 allows topics without)."""
    other = name[1:] if name.startswith('/') else '/' + name
    return [name, other]


def find_topic(topics: dict[str, TopicInfo], name: str, role: str) -> str | None:
    """The bag topic the user means by ``name``: itself, with or without the leading slash,
    or an image_transport transport of it (``camera/image`` -> ``camera/image/compressed``;
    depth prefers compressedDepth).  None when none is in the bag.
    """
    suffixes = {'image': ('', '/compressed'), 'depth': ('', *_TRANSPORTS)}.get(role, ('',))
    for suffix in suffixes:
        for spelling in _spellings(name.rstrip('/') if suffix else name):
            if spelling + suffix in topics:
                return spelling + suffix
    return None


def _explicit(topics: dict[str, TopicInfo], name: str, types: tuple[str, ...], role: str) -> str:
    found = find_topic(topics, name, role)
    if found is None:
        raise ReplayError(
            f'{role} topic {name!r} is not in the bag (nor {name!r} with or without the leading '
            f'slash, nor an image_transport transport of it); topics: {_listing(topics)}'
        )
    info = topics[found]
    if info.msgtype not in types:
        raise ReplayError(
            f'{role} topic {found!r} has type {info.msgtype}, expected {" or ".join(types)}'
        )
    return found


def _pick(
    topics: dict[str, TopicInfo],
    requested: str | None,
    types: tuple[str, ...],
    role: str,
    pattern: re.Pattern | None,
    notes: list[str],
    exclude: tuple[str | None, ...] = (),
) -> str | None:
    """An optional role: explicit, off, or the single candidate matching ``pattern``."""
    if requested is not None:
        return None if requested.lower() == NONE else _explicit(topics, requested, types, role)
    candidates = _one_per_transport(
        [
            t.name
            for t in topics.values()
            if t.msgtype in types
            and t.name not in exclude
            and (pattern is None or pattern.search(t.name))
        ]
    )
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        notes.append(
            f'{role}: several candidates ({", ".join(candidates)}), none used; '
            f'choose one with --{role.replace("_", "-")}-topic'
        )
    return None


def _camera_info(
    topics: dict[str, TopicInfo], requested: str | None, image: str, notes: list[str]
) -> str | None:
    if requested is not None:
        return _pick(topics, requested, (CAMERA_INFO,), 'camera_info', None, notes)
    candidates = [t.name for t in topics.values() if t.msgtype == CAMERA_INFO]
    parts = image.strip('/').split('/')
    for depth in range(len(parts) - 1, 0, -1):  # nearest namespace of the image topic first
        prefix = '/' + '/'.join(parts[:depth]) + '/'
        near = [c for c in candidates if c.startswith(prefix)]
        if len(candidates) > 1 and len(near) == 1:
            return near[0]
    return _pick(topics, None, (CAMERA_INFO,), 'camera_info', None, notes)


def _image(
    topics: dict[str, TopicInfo], requested: str | None, taken: tuple[str | None, ...]
) -> str:
    if requested is not None:
        return _explicit(topics, requested, IMAGE_TYPES, 'image')
    images = {n: t for n, t in topics.items() if t.msgtype in IMAGE_TYPES}
    if not images:
        raise ReplayError(
            f'the bag has no image topics (sensor_msgs/Image or CompressedImage); '
            f'topics: {_listing(topics)}'
        )
    candidates = _one_per_transport(
        [
            n
            for n in images
            if n not in taken
            and not _DEPTH_RE.search(n)
            and not _GT_RE.search(n)
            and not _OUTPUT_RE.search(n)
        ]
    )
    if not candidates and len(_one_per_transport(list(images))) == 1 and taken[0] in images:
        raise ReplayError(
            f'{taken[0]!r} is the only image topic of the bag, so it cannot be both the depth '
            f'and the image to segment: the bag has no depth. Replay it with --image-topic '
            f'{taken[0]} --depth-topic none'
        )
    if len(candidates) != 1:
        raise ReplayError(
            f'cannot tell which image topic to segment; image topics: '
            f'{_listing(images)}; choose one with --image-topic'
        )
    return candidates[0]


def select_topics(
    topics: dict[str, TopicInfo],
    image: str | None = None,
    depth: str | None = None,
    camera_info: str | None = None,
    command: str | None = None,
    ground_truth: str | None = None,
) -> TopicSelection:
    """Choose the topic of each role (arguments: a topic name, None = auto, "none" = off).

    Raises:
        ReplayError: an empty bag, a named topic missing or of the wrong type, no or several
            candidate image topics, or an image topic without messages.
    """
    if not topics or all(t.count == 0 for t in topics.values()):
        raise ReplayError('the bag is empty (no messages)')
    notes: list[str] = []
    depth = _pick(topics, depth, IMAGE_TYPES, 'depth', _DEPTH_RE, notes)
    ground_truth = _pick(
        topics, ground_truth, (IMAGE,), 'ground_truth', _GT_RE, notes, exclude=(depth,)
    )
    image = _image(topics, image, (depth, ground_truth))
    if image in (depth, ground_truth):
        raise ReplayError(f'topic {image!r} cannot be both the image and the depth/ground truth')
    if topics[image].count == 0:
        raise ReplayError(f'image topic {image!r} has no messages')
    return TopicSelection(
        image=image,
        image_type=topics[image].msgtype,
        depth=depth,
        camera_info=_camera_info(topics, camera_info, image, notes),
        command=_pick(topics, command, (STRING,), 'command', _COMMAND_RE, notes),
        ground_truth=ground_truth,
        notes=tuple(notes),
    )
