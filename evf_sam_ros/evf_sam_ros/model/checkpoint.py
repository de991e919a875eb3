"""Find, read and strictly load EVF-SAM checkpoints (hub layout), never executing their code.

A checkpoint directory holds config.json, model.safetensors or pytorch_model.bin (or a
sharded index of either) and the tokenizer files. Safetensors is read with ``safetensors``;
``.bin`` only with ``torch.load(weights_only=True, map_location="cpu")``.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Mapping

import torch

from evf_sam_ros.install_layout import is_colcon_install, is_source_checkout, tool_command
from evf_sam_ros.model.config import EvfConfig, parse_config
from evf_sam_ros.model.errors import CheckpointError, HubUnavailableError

WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
INDEX_FILES = ('model.safetensors.index.json', 'pytorch_model.bin.index.json')
HUB_FILES = [
    'config.json',
    '*.safetensors',
    '*.bin',
    '*.index.json',
    'sentencepiece.bpe.model',
    'tokenizer_config.json',
    'special_tokens_map.json',
    'added_tokens.json',
]
_HUB_ID = re.compile(r'^[A-Za-z0-9][\w.-]*/[\w.-]+$')
# EVF renamed SAM2's CXBlock scale ``gamma`` to ``weight`` in some checkpoints.
_FUSER_SCALE = re.compile(r'^(visual_model\.memory_encoder\.fuser\.layers\.\d+)\.weight$')


def offline_hint() -> str:
    """What to do when a hub checkpoint cannot be had, in the commands of the install in use: a
    colcon workspace (launch argument, ``ros2 run``), this repository (``make demo``, .venv/bin)
    or a pip install (the script's path).
    """
    if is_colcon_install():
        where = (
            '`ros2 launch evf_sam_ros evf_sam.launch.py checkpoint:=<dir>` (or '
            '`-p checkpoint:=<dir>`)'
        )
    elif is_source_checkout():
        where = '`make demo CHECKPOINT=<dir>` (or the checkpoint parameter)'
    else:
        where = 'the checkpoint parameter, or --checkpoint <dir>'
    return (
        f'Use a local checkpoint directory: {where}; '
        f'`{tool_command("evf-sam-tiny-checkpoint")} <dir>` writes one with tiny random '
        f'weights, to try the pipeline (its masks mean nothing).'
    )


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A local checkpoint directory, or a hub id downloaded (cached, with progress bars)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    if path.exists():
        raise CheckpointError(
            f'{path} is a file; give the checkpoint directory that holds config.json'
        )
    if not _HUB_ID.match(text):
        raise CheckpointError(
            f'checkpoint directory {path} does not exist (and it is not a '
            f"hub id like 'YxZhang/evf-sam2')"
        )
    return _download(text)


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import RepositoryNotFoundError
    except ImportError as exc:
        raise HubUnavailableError(
            f'huggingface_hub is not installed, so {repo_id!r} cannot be '
            f'downloaded. {offline_hint()}'
        ) from exc
    try:
        return Path(snapshot_download(repo_id=repo_id, allow_patterns=HUB_FILES))
    except RepositoryNotFoundError as exc:
        raise CheckpointError(
            f'the hub has no repository {repo_id!r} (or it is private); '
            f'released ones: YxZhang/evf-sam, YxZhang/evf-sam2, '
            f'YxZhang/evf-sam-multitask, YxZhang/evf-sam2-multitask'
        ) from exc
    except Exception as exc:  # network errors come in many types; all mean "not reachable"
        raise HubUnavailableError(
            f'could not download {repo_id!r} from the Hugging Face hub '
            f'({type(exc).__name__}: {str(exc)[:200]}). {offline_hint()}'
        ) from exc


def read_config(directory: Path, sam_type_override: str | None = None) -> EvfConfig:
    """Parse ``config.json`` of a checkpoint directory."""
    path = directory / 'config.json'
    if not path.is_file():
        raise CheckpointError(
            f'{directory} has no config.json; is it an EVF-SAM checkpoint directory?'
        )
    try:
        raw = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f'{path} is not valid JSON: {exc}') from exc
    return parse_config(raw, sam_type_override)


def weight_files(directory: Path) -> list[Path]:
    """The weight files to read, single file or shards, safetensors preferred."""
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return [directory / name]
    for name in INDEX_FILES:
        index = directory / name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())['weight_map'].values()))
            except (OSError, ValueError, KeyError) as exc:
                raise CheckpointError(f'{index} is not a valid shard index: {exc}') from exc
            return [directory / s for s in shards]
    raise CheckpointError(
        f'{directory} holds no weights: expected one of {WEIGHT_FILES + INDEX_FILES}'
    )


def read_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of one weight file on the CPU. Raises CheckpointError if unreadable."""
    if not path.is_file():
        raise CheckpointError(f'weight file {path} is missing')
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file

            return load_file(str(path), device='cpu')
        state = torch.load(str(path), map_location='cpu', weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f'{path} is corrupt or holds more than tensors (refused: loading '
            f'never runs code from a checkpoint): {str(exc)[:300]}'
        ) from exc
    except Exception as exc:  # safetensors, zipfile and torch raise several unrelated types
        raise CheckpointError(
            f'{path} is corrupt or truncated ({type(exc).__name__}: {str(exc)[:300]})'
        ) from exc
    if not isinstance(state, Mapping):
        raise CheckpointError(f'{path} holds a {type(state).__name__}, not a state dict')
    return dict(state)


def normalize_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map EVF's renamed SAM2 fuser scale ``...fuser.layers.N.weight`` to sam2's ``gamma``."""
    return {_FUSER_SCALE.sub(r'\1.gamma', k): v for k, v in state.items()}


def check_state_dict(
    expected: Mapping[str, torch.Size], state: Mapping[str, torch.Tensor]
) -> None:
    """Raise CheckpointError naming missing keys, unexpected keys and shape mismatches."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f'{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k])}'
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k])
    )
    problems = []
    for label, items in (
        ('missing keys', missing),
        ('unexpected keys', unexpected),
        ('shape mismatches', wrong),
    ):
        if items:
            shown = ', '.join(items[:8]) + (
                f', ... ({len(items)} in all)' if len(items) > 8 else ''
            )
            problems.append(f'{label}: {shown}')
    if problems:
        raise CheckpointError(
            'the checkpoint does not fit the model its config.json describes '
            '(wrong variant or size fields?); ' + '; '.join(problems)
        )


def load_state(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory, keys normalised."""
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(directory):
        state.update(read_file(path))
    return normalize_keys(state)
