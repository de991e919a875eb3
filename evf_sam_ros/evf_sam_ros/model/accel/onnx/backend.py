"""Exported graphs behind the predictor's tensor calls, and where the graphs come from.

open_graphs finds (or exports on first use) a checkpoint's graphs and opens them in
onnxruntime or TensorRT; GraphBackend then offers the three calls the torch path has
(encode: SAM image encoder, text: BEiT-3 fusion, decode: prompt encoder + mask decoder),
with the same tensors in and out, so preprocessing and postprocessing stay the project's code.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Callable

import torch

from evf_sam_ros.model.accel.onnx.cache import (
    checkpoint_hash,
    default_engine_cache_dir,
    export_cache_dir,
    staged_dir,
)
from evf_sam_ros.model.accel.onnx.export import MANIFEST, OPSET, export_model, read_manifest
from evf_sam_ros.model.checkpoint import read_config, resolve_checkpoint, weight_files
from evf_sam_ros.model.config import EvfConfig, Regime, get_variant, variant_for
from evf_sam_ros.model.errors import CheckpointError, VariantError
from evf_sam_ros.model.tokenizer import EvfTokenizer

GRAPH_BACKENDS = ('onnxruntime', 'tensorrt')
IMAGE_GRAPHS = ('beit3_fusion', 'image_encoder', 'mask_decoder')
_LOG = logging.getLogger(__name__)


class GraphBackend:
    """The image-mode graphs of one export, opened in one runtime on one device; ``cfg`` is
    the checkpoint's config (sizes), ``manifest`` the export's.

    Tensors in and out are those of the torch runners (fp32): encode(pixels 1x3xSxS) ->
    SAM features; text(pixels 1x3x224x224, ids KxL, mask KxL bool | None) -> Kx1xC;
    decode(text Kx1xC, *features) -> (Kx1xhxw logits, Kx1 IoU, Kx1 object score | None).
    """

    def __init__(
        self,
        export_dir: Path,
        manifest: dict,
        cfg: EvfConfig,
        runtime: str,
        device: torch.device,
        engine_cache_dir: Path | None = None,
        log: Callable[[str], None] = _LOG.info,
    ):
        self.export_dir, self.manifest, self.runtime = Path(export_dir), manifest, runtime
        self.cfg = cfg
        self.device = device
        graphs = manifest['graphs']
        missing = [g for g in IMAGE_GRAPHS if g not in graphs]
        if missing:
            raise CheckpointError(f'{export_dir} lacks the graphs {missing}; export again')
        self._engine_cache_dir, self._log = engine_cache_dir, log
        self.graphs = {
            name: self._open(name, graphs[name], engine_cache_dir, log) for name in IMAGE_GRAPHS
        }

    def open_more(self, names: tuple[str, ...], ranges: dict) -> dict[str, Callable]:
        """Open more graphs of this export in the same runtime (track mode's); ranges: the
        TensorRT profile range of each of their dynamic axes. Raises CheckpointError when one
        was not exported.
        """
        graphs = self.manifest['graphs']
        missing = [g for g in names if g not in graphs]
        if missing:
            raise CheckpointError(
                f'{self.export_dir} lacks the graphs {missing}; export again with evf-sam-export'
            )
        return {
            name: self._open(name, graphs[name], self._engine_cache_dir, self._log, ranges)
            for name in names
        }

    def _open(
        self, name: str, entry: dict, engine_cache_dir: Path | None, log, ranges=None
    ) -> Callable:
        if self.runtime == 'onnxruntime':
            from evf_sam_ros.model.accel.onnx.ort_runtime import OrtGraph

            return OrtGraph(self.export_dir / entry['file'], self.device)
        from evf_sam_ros.model.accel.onnx import trt_runtime as trt_rt

        trt = trt_rt.require_tensorrt(self.device)
        ranges = {**trt_rt.text_ranges(self.manifest['max_text_tokens']), **(ranges or {})}
        cache = Path(engine_cache_dir or default_engine_cache_dir()).expanduser()
        path = trt_rt.engine_for(trt, self.export_dir, name, entry, ranges, cache, log)
        return trt_rt.TrtGraph(trt, path, self.device)

    def encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """SAM features of one frame (see graphs.py for shapes)."""
        return self.graphs['image_encoder'](pixels.float())

    def text(
        self, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """BEiT-3 fusion: Kx1xC prompt embeddings (mask None = no padding)."""
        if mask is None:
            mask = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
        return self.graphs['beit3_fusion'](pixels.float(), ids, mask)[0]

    def decode(self, text: torch.Tensor, *features: torch.Tensor) -> tuple:
        """Prompt encoder + mask decoder: (logits, IoU, object score or None)."""
        outs = self.graphs['mask_decoder'](text.float(), *features)
        return (*outs, None) if len(outs) == 2 else outs


def require_runtime(runtime: str, device: torch.device) -> None:
    """Raise BackendUnavailableError (with the install command) when ``runtime`` cannot run
    on ``device`` here.
    """
    if runtime == 'onnxruntime':
        from evf_sam_ros.model.accel.onnx.ort_runtime import require_onnxruntime

        require_onnxruntime(device)
    else:
        from evf_sam_ros.model.accel.onnx.trt_runtime import require_tensorrt

        require_tensorrt(device)


def export_checkpoint(
    name_or_path: str | Path,
    out_dir: Path,
    variant: str | None = None,
    log: Callable[[str], None] = _LOG.info,
) -> dict:
    """Export a checkpoint (hub id or directory) into out_dir: graphs, manifest, and its
    config and tokenizer files (so out_dir alone can be opened). Returns the manifest.
    """
    from evf_sam_ros.model.loading import load_parts

    directory = resolve_checkpoint(name_or_path)
    model, tokenizer, regime = load_parts(directory, variant)
    log(f'hashing {directory} ...')
    sha = checkpoint_hash(directory)
    return _export_into(directory, model, regime, Path(out_dir), str(name_or_path), sha, log)


def _export_into(directory, model, regime, out_dir, name, sha, log) -> dict:
    weights = {p.name for p in weight_files(directory)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in directory.iterdir():
        if path.is_file() and path.name not in weights and not path.name.endswith('.json.idx'):
            shutil.copyfile(path, out_dir / path.name)
    checkpoint = {'name': name, 'sha256': sha}
    return export_model(model.float().cpu(), regime, out_dir, checkpoint, log=log)


def open_graphs(
    name_or_path: str | Path,
    runtime: str,
    device: torch.device,
    variant: str | None = None,
    onnx_dir: str | Path | None = None,
    engine_cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[GraphBackend, EvfTokenizer, Regime]:
    """Graphs for a checkpoint (hub id or directory), an exported directory (``onnx_dir``,
    or name_or_path holding a manifest), exported on first use into the hash-keyed cache.
    """
    require_runtime(runtime, device)  # refuse before a slow export
    log = log or _LOG.info
    export_dir = Path(onnx_dir).expanduser() if onnx_dir else None
    if export_dir is None and Path(name_or_path).expanduser().joinpath(MANIFEST).is_file():
        export_dir = Path(name_or_path).expanduser()
    if export_dir is None:
        directory = resolve_checkpoint(name_or_path)
        cfg = read_config(directory)
        tokenizer = EvfTokenizer.from_dir(directory)
        regime = (
            get_variant(variant) if variant else variant_for(cfg.sam_type, tokenizer.is_multitask)
        )
        sha = checkpoint_hash(directory)
        export_dir = export_cache_dir(sha, regime.name, OPSET)
        if not (export_dir / MANIFEST).is_file():
            log(f'exporting {name_or_path} to {export_dir} (first use; minutes for full size)')
            from evf_sam_ros.model.loading import load_parts

            model, _, _ = load_parts(directory, regime.name)
            with staged_dir(export_dir) as tmp:
                _export_into(directory, model, regime, tmp, str(name_or_path), sha, log)
            del model
    if not (export_dir / MANIFEST).is_file():
        raise CheckpointError(f'{export_dir} has no {MANIFEST}; write it with evf-sam-export')
    manifest = read_manifest(export_dir)
    if variant and variant != manifest['variant']:
        raise VariantError(
            f'{export_dir} was exported as {manifest["variant"]}, not {variant}; export again '
            f'with evf-sam-export --variant {variant}'
        )
    cfg = read_config(export_dir)
    tokenizer = EvfTokenizer.from_dir(export_dir)
    graphs = GraphBackend(export_dir, manifest, cfg, runtime, device, engine_cache_dir, log)
    return graphs, tokenizer, get_variant(manifest['variant'])
