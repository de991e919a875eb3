"""SAM2's video path on exported graphs (onnxruntime or TensorRT), one frame at a time.

``GraphVideoRunner`` answers as ``sam2_video.Sam2VideoRunner`` does (encode, ground, track
-> ``StepOutput``) with the track graphs of ``accel.onnx.track_graphs`` and the image-mode
encoder graph; the glue stays the project's torch code: the memory bank (``track_memory``),
which frames and pointers a frame reads (``select_memory``, sam2's rule for EVF-SAM2's
configs), hole filling (``holes``). Memory features are kept in bfloat16 as sam2 keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

from evf_sam_ros.model.accel.onnx.track_export import MAX_TARGETS, TRACK_GRAPHS, TrackSettings
from evf_sam_ros.model.tracking.holes import fill_holes
from evf_sam_ros.model.tracking.sam2_video import Sam2VideoRunner, StepOutput, VideoFrame
from evf_sam_ros.model.tracking.track_memory import (
    TargetMemory,
    batched_output_dict,
    memory_window,
)

#: A graph: its inputs (tensors, in the graph's order) -> its outputs, in the graph's order.
Graph = Callable[..., Sequence[torch.Tensor]]


@dataclass(frozen=True)
class GraphFrame:
    """One frame through the image-encoder graph (batch 1), float32.

    image_embed: 1xCxhxw (top level + no_mem_embed, as image mode), high_s4: 1xC/8x4hx4w,
    high_s8: 1xC/4x2hx2w.
    """

    image_embed: torch.Tensor
    high_s4: torch.Tensor
    high_s8: torch.Tensor


#: A frame through either runner's encoder.
AnyFrame = VideoFrame | GraphFrame


def select_memory(
    output_dict: Mapping[str, Mapping[int, Mapping[str, Any]]], index: int, s: TrackSettings
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What frame ``index`` reads, as sam2's ``_prepare_memory_conditioned_features`` picks
    it (stride 1, every conditioning frame attended, pointers without temporal encoding).

    Returns memory BxFxmxhxw float32 (conditioning frames, then the others oldest to
    newest), memory_tpos F int64 (their ``maskmem_tpos_enc`` rows), obj_ptrs BxPxC float32
    (conditioning frames up to ``index``, then the others newest to oldest).
    """
    cond = output_dict['cond_frame_outputs']
    recent = output_dict['non_cond_frame_outputs']
    frames = list(cond.values())
    rows = [s.num_maskmem - 1] * len(frames)
    for t_pos in range(1, s.num_maskmem):
        out = recent.get(index - (s.num_maskmem - t_pos))
        if out is not None:
            frames.append(out)
            rows.append(s.num_maskmem - t_pos - 1)
    pointers = [out['obj_ptr'] for t, out in cond.items() if t <= index]
    for t_diff in range(1, min(index + 1, s.max_obj_ptrs_in_encoder)):
        out = recent.get(index - t_diff)
        if out is not None:
            pointers.append(out['obj_ptr'])
    memory = torch.stack([f['maskmem_features'] for f in frames], dim=1).float()
    obj_ptrs = torch.stack(pointers, dim=1).float()
    return memory, torch.tensor(rows, dtype=torch.int64), obj_ptrs


def joined(outputs: Sequence[StepOutput]) -> StepOutput:
    """One StepOutput of the targets of several (in order)."""
    if len(outputs) == 1:
        return outputs[0]
    return StepOutput(
        torch.cat([o.low_res for o in outputs]),
        torch.cat([o.iou for o in outputs]),
        torch.cat([o.object_score for o in outputs]),
        tuple(m for o in outputs for m in o.memories),
    )


class GraphVideoRunner:
    """SAM2 track mode on graphs (see the module docstring).

    Targets go through the graphs MAX_TARGETS at a time (the TensorRT profiles' bound).
    graphs: the four of ``track_export.TRACK_GRAPHS``; encoder: 1x3xSxS float32 pixels ->
    (image_embed, high_s4, high_s8), the image-mode encoder graph.
    """

    def __init__(
        self,
        graphs: Mapping[str, Graph],
        encoder: Callable[[torch.Tensor], Sequence[torch.Tensor]],
        settings: TrackSettings,
    ):
        missing = [name for name in TRACK_GRAPHS if name not in graphs]
        if missing:
            raise ValueError(f'track mode needs the graphs {missing}')
        self._graphs, self._encoder, self.settings = dict(graphs), encoder, settings

    @classmethod
    def open(cls, backend: Any) -> 'GraphVideoRunner':
        """On a predictor's ``GraphBackend``: its encoder and the track graphs of its export,
        opened in its runtime.
        """
        settings = TrackSettings.of(backend.cfg)
        graphs = backend.open_more(TRACK_GRAPHS, settings.trt_ranges())
        return cls(graphs, backend.encode, settings)

    @property
    def image_size(self) -> int:
        """Side of the square SAM2 input in pixels."""
        return self.settings.image_size

    def encode(self, pixels: torch.Tensor) -> GraphFrame:
        """pixels: 1x3xSxS float32 (``video_frames.sam2_video_pixels``)."""
        image_embed, high_s4, high_s8 = self._encoder(pixels.float())
        return GraphFrame(image_embed, high_s4, high_s8)

    def ground(self, frame: GraphFrame, text: torch.Tensor) -> StepOutput:
        """Ground B targets on ``frame`` from their text features (Bx1xC)."""
        return joined([self._ground(frame, part) for part in text.split(MAX_TARGETS)])

    def track(self, frame: GraphFrame, memories: Sequence[TargetMemory]) -> StepOutput:
        """Track targets with one ``batch_key`` on their next frame, batched."""
        parts = [memories[i : i + MAX_TARGETS] for i in range(0, len(memories), MAX_TARGETS)]
        return joined([self._track(frame, part) for part in parts])

    def _ground(self, frame: GraphFrame, text: torch.Tensor) -> StepOutput:
        low_res, ious, obj_ptr, object_score = self._graphs['ground_heads'](
            frame.image_embed, frame.high_s4, frame.high_s8, text.float()
        )
        filled = fill_holes(low_res)
        return self._remember(frame, filled, filled, ious, obj_ptr, object_score, True)

    def _track(self, frame: GraphFrame, memories: Sequence[TargetMemory]) -> StepOutput:
        index, output_dict = batched_output_dict(memories, [])
        memory, memory_tpos, obj_ptrs = select_memory(output_dict, index, self.settings)
        device = frame.image_embed.device
        (pix_feat,) = self._graphs['track_memory_attention'](
            frame.image_embed, memory.to(device), memory_tpos.to(device), obj_ptrs.to(device)
        )
        low_res, ious, obj_ptr, object_score = self._graphs['track_heads'](
            pix_feat, frame.high_s4, frame.high_s8
        )
        return self._remember(
            frame, fill_holes(low_res), low_res, ious, obj_ptr, object_score, False
        )

    def _remember(
        self,
        frame: GraphFrame,
        filled: torch.Tensor,
        for_memory: torch.Tensor,
        ious: torch.Tensor,
        obj_ptr: torch.Tensor,
        object_score: torch.Tensor,
        binarize: bool,
    ) -> StepOutput:
        """Encode the frame's memory from ``for_memory`` and assemble the StepOutput."""
        flag = torch.tensor(binarize, device=for_memory.device)
        (features,) = self._graphs['memory_encoder'](
            frame.image_embed, for_memory, object_score, flag
        )
        return StepOutput.of(filled, ious, object_score, features, obj_ptr)


def video_runner(predictor: Any) -> tuple[Sam2VideoRunner | GraphVideoRunner, int, Callable]:
    """(runner, memory window, BEiT-3 text call) for a predictor's backend: sam2's modules
    with the torch backend, the exported graphs with onnxruntime / tensorrt. The text call
    takes (pixels 1x3x224x224, ids 1xL int64, None) and returns 1x1xC.
    """
    if predictor.model is None:
        runner = GraphVideoRunner.open(predictor.graphs)
        return runner, runner.settings.window, predictor.graphs.text
    sam2 = predictor.model.visual_model
    return Sam2VideoRunner(sam2), memory_window(sam2), predictor.model.text_embedding
