"""Pictures of a replay: an overlay video (overlay.mp4) and a contact sheet (contact_sheet.png).

Each picture is the frame with every target's mask tinted (first target blue, then other
colours) and, for every target, its box, centroid and a label row (a square of its tint,
prompt, score or "not found", track state) drawn by ``drawing.annotate``.  Frames without a
result show "(no result)".  A frame of another size than the first is letterboxed into the
first one's size (scaled to fit, aspect kept, black bars), in the video and on the sheet.
Memory stays bounded: the video is streamed to ffmpeg and the sheet keeps only its ~12
sampled tiles, each shrunk to the sheet's tile width when taken.
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
_TILE_WIDTH = 320  # px, the contact sheet's tiles


def render_frame(rgb: np.ndarray, outcome: FrameOutcome | None, reason: str = '') -> np.ndarray:
    """HxWx3 uint8 RGB picture of one frame's result (``reason`` labels frames without one)."""
    if outcome is None or not outcome.prompts:
        return annotate(
            rgb, f'(no result{": " + reason if reason else ""})', None, None, found=False
        )
    picture = rgb
    for index, result in reversed(list(enumerate(outcome.prompts))):
        picture = overlay_mask(picture, result.mask, target_color(index))
    for index, result in enumerate(outcome.prompts):
        picture = annotate(
            picture,
            result.prompt + _track_state(result),
            result.score,
            result.centroid,
            result.bbox,
            result.found,
            line=index,
            swatch=target_color(index) if len(outcome.prompts) > 1 else None,
        )
    return picture


def letterbox(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 ``picture`` scaled to fit ``size`` (width, height), aspect kept, centred
    on black (the picture itself when it has that size already).
    """
    width, height = size
    if picture.shape[1] == width and picture.shape[0] == height:
        return picture
    scale = min(width / picture.shape[1], height / picture.shape[0])
    fitted = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(picture).resize(fitted, Image.BILINEAR))
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - fitted[0]) // 2, (height - fitted[1]) // 2
    out[y0 : y0 + fitted[1], x0 : x0 + fitted[0]] = resized
    return out


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


def _shrink(picture: np.ndarray, width: int) -> np.ndarray:
    """``picture`` scaled down to ``width`` pixels wide (aspect kept); smaller ones as they are."""
    if picture.shape[1] <= width:
        return picture
    height = max(1, round(picture.shape[0] * width / picture.shape[1]))
    return np.asarray(Image.fromarray(picture).resize((width, height), Image.BILINEAR))


def _even(picture: np.ndarray) -> np.ndarray:
    """Pad by one black row/column where needed: H.264 (yuv420p) needs even sizes."""
    height, width = picture.shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    return np.pad(picture, pad) if any(p[1] for p in pad) else picture


class VisualsWriter:
    """Writes overlay.mp4 (optional) and contact_sheet.png into ``out_dir``.

    The video's frame rate comes from the first frames' header stamps (10 fps when unknown);
    every picture is letterboxed into the first one's size.  The sheet's ~12 frames are
    spread evenly over the frames seen, whatever their number (known only at the end): frames
    whose index is a multiple of a stride are kept, and the stride doubles (every other kept
    tile dropped) whenever more than twice the sheet's tiles are kept; the last frame is added.
    """

    def __init__(self, out_dir: str | Path, video: bool = True):
        self.out_dir = Path(out_dir)
        self.video = video
        self._stride = 1
        self._kept: list[tuple[int, np.ndarray]] = []  # (frame index, tile)
        self._last: tuple[int, Any] | None = None  # the newest frame: tile or its inputs
        self._buffer: list[tuple[int, np.ndarray]] = []  # (stamp ns, picture) before opening
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self.video_path: Path | None = None
        self.sheet_path: Path | None = None

    def _picture(self, rgb: np.ndarray, outcome: FrameOutcome | None, reason: str) -> Any:
        picture = render_frame(rgb, outcome, reason)
        if self._size is None:
            self._size = _even(picture).shape[1::-1]
        return letterbox(picture, self._size)

    def add(
        self,
        index: int,
        stamp_ns: int,
        rgb: np.ndarray,
        outcome: FrameOutcome | None,
        reason: str = '',
    ) -> None:
        """Draw frame ``index`` (header stamp ``stamp_ns``, HxWx3 uint8 RGB ``rgb``)."""
        sampled = index % self._stride == 0
        if not (self.video or sampled):  # drawn at close if it stays the last frame
            self._last = (index, (rgb, outcome, reason))
            return
        picture = self._picture(rgb, outcome, reason)
        self._last = None if sampled else (index, _shrink(picture, _TILE_WIDTH))
        if sampled:
            self._keep(index, _shrink(picture, _TILE_WIDTH))
        if not self.video:
            return
        if self._writer is None:
            self._buffer.append((stamp_ns, picture))
            if len(self._buffer) >= _FPS_PROBE_FRAMES:
                self._open()
        else:
            self._append(picture)

    def _keep(self, index: int, tile: np.ndarray) -> None:
        self._kept.append((index, tile))
        if len(self._kept) > 2 * SHEET_TILES:
            self._stride *= 2
            self._kept = [(i, t) for i, t in self._kept if i % self._stride == 0]

    def _sheet_tiles(self) -> list[np.ndarray]:
        """About SHEET_TILES tiles spread over the frames seen, the first and last included."""
        kept = list(self._kept)
        if self._last is not None:
            index, last = self._last
            tile = (
                last
                if isinstance(last, np.ndarray)
                else _shrink(self._picture(*last), _TILE_WIDTH)
            )
            kept.append((index, tile))
        chosen = sorted(sample_indices(len(kept)))
        return [kept[i][1] for i in chosen]

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
        self._writer.append_data(picture)

    def close(self) -> Sequence[Path]:
        """Finish the video and write the contact sheet; returns the files written."""
        if self.video and self._writer is None and self._buffer:
            self._open()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        tiles = self._sheet_tiles()
        if tiles:
            sheet = contact_sheet(tiles, _SHEET_COLUMNS, tiles[0].shape[1])
            self.sheet_path = self.out_dir / 'contact_sheet.png'
            Image.fromarray(sheet).save(self.sheet_path, optimize=True)
        return [p for p in (self.video_path, self.sheet_path) if p is not None]
