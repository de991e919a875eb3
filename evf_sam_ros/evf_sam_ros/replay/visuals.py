"""Pictures of a replay: an overlay video (overlay.mp4) and a contact sheet (contact_sheet.png).

Each picture is the frame with every prompt's mask tinted (first prompt blue, then other
colours) and the first prompt's label, score, box and centroid drawn by
``drawing.annotate``.  Frames without a result show "(no result)".
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from evf_sam_ros.pipeline.drawing import annotate, contact_sheet, overlay_mask, target_color
from evf_sam_ros.replay.results import FrameOutcome

SHEET_TILES = 12
_SHEET_COLUMNS = 4
_FPS_PROBE_FRAMES = 5


def render_frame(rgb: np.ndarray, outcome: FrameOutcome | None, reason: str = '') -> np.ndarray:
    """HxWx3 uint8 RGB picture of one frame's result (``reason`` labels frames without one)."""
    if outcome is None or not outcome.prompts:
        return annotate(
            rgb, f'(no result{": " + reason if reason else ""})', None, None, found=False
        )
    picture = rgb
    for index, result in reversed(list(enumerate(outcome.prompts))):
        picture = overlay_mask(picture, result.mask, target_color(index))
    first = outcome.prompts[0]
    return annotate(
        picture,
        first.prompt + _track_state(first),
        first.score,
        first.centroid,
        first.bbox,
        first.found,
    )


def _track_state(outcome: Any) -> str:
    """' [lost]', ' [tracked]' (track mode, carried by memory) or '' (grounded this frame)."""
    if outcome.lost:
        return ' [lost]'
    return '' if outcome.grounded else ' [tracked]'


@functools.lru_cache(maxsize=1)
def video_codec() -> str:
    """The codec: "libx264" when imageio-ffmpeg's ffmpeg has it, else "mpeg4"."""
    import imageio_ffmpeg

    try:
        listing = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), '-hide_banner', '-encoders'],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 'mpeg4'
    return 'libx264' if ' libx264 ' in listing else 'mpeg4'


def sample_indices(total: int, count: int = SHEET_TILES) -> set[int]:
    """About ``count`` frame indices spread evenly over 0..total-1 (first and last included)."""
    if total <= 0:
        return set()
    return {int(round(v)) for v in np.linspace(0, total - 1, min(count, total))}


def _even(picture: np.ndarray) -> np.ndarray:
    """Pad by one black row/column where needed: H.264 (yuv420p) needs even sizes."""
    height, width = picture.shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    return np.pad(picture, pad) if any(p[1] for p in pad) else picture


class VisualsWriter:
    """Writes overlay.mp4 (optional) and contact_sheet.png into ``out_dir``.

    total_frames: frames expected (for choosing the contact sheet's frames). The video's
    frame rate comes from the first frames' header stamps (10 fps when unknown); every video
    frame is resized to the first one's size.
    """

    def __init__(self, out_dir: str | Path, total_frames: int, video: bool = True):
        self.out_dir = Path(out_dir)
        self.video = video
        self._sheet_indices = sample_indices(total_frames)
        self._tiles: list[np.ndarray] = []
        self._buffer: list[tuple[int, np.ndarray]] = []  # (stamp ns, picture) before opening
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self.video_path: Path | None = None
        self.sheet_path: Path | None = None

    def add(
        self,
        index: int,
        stamp_ns: int,
        rgb: np.ndarray,
        outcome: FrameOutcome | None,
        reason: str = '',
    ) -> None:
        """Draw frame ``index`` (header stamp ``stamp_ns``, HxWx3 uint8 RGB ``rgb``)."""
        picture = render_frame(rgb, outcome, reason)
        if index in self._sheet_indices:
            self._tiles.append(picture)
        if not self.video:
            return
        if self._writer is None:
            self._buffer.append((stamp_ns, picture))
            if len(self._buffer) >= _FPS_PROBE_FRAMES:
                self._open()
        else:
            self._append(picture)

    def _fps(self) -> float:
        stamps = np.array([s for s, _ in self._buffer], dtype=np.float64)
        steps = np.diff(stamps)
        steps = steps[steps > 0]
        return float(np.clip(1e9 / np.median(steps), 1.0, 120.0)) if steps.size else 10.0

    def _open(self) -> None:
        import imageio.v2 as imageio

        self.video_path = self.out_dir / 'overlay.mp4'
        codec = video_codec()
        params = ['-crf', '23', '-preset', 'veryfast'] if codec == 'libx264' else ['-q:v', '5']
        self._writer = imageio.get_writer(
            self.video_path,
            format='FFMPEG',
            mode='I',
            fps=self._fps(),
            codec=codec,
            pixelformat='yuv420p',
            macro_block_size=2,
            quality=None,
            ffmpeg_params=params,
            ffmpeg_log_level='error',
        )
        buffered, self._buffer = self._buffer, []
        for _, picture in buffered:
            self._append(picture)

    def _append(self, picture: np.ndarray) -> None:
        picture = _even(picture)
        if self._size is None:
            self._size = (picture.shape[1], picture.shape[0])
        elif (picture.shape[1], picture.shape[0]) != self._size:
            picture = np.asarray(Image.fromarray(picture).resize(self._size, Image.BILINEAR))
        self._writer.append_data(picture)

    def close(self) -> Sequence[Path]:
        """Finish the video and write the contact sheet; returns the files written."""
        if self.video and self._writer is None and self._buffer:
            self._open()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tiles:
            tile_width = min(320, self._tiles[0].shape[1])
            sheet = contact_sheet(self._tiles, _SHEET_COLUMNS, tile_width)
            self.sheet_path = self.out_dir / 'contact_sheet.png'
            Image.fromarray(sheet).save(self.sheet_path, optimize=True)
        return [p for p in (self.video_path, self.sheet_path) if p is not None]
