"""Bad checkpoints give project errors that say what to do; loading never runs checkpoint code."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evf_sam_ros.model import CheckpointError, EvfSamPredictor, VariantError


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match='does not exist'):
        EvfSamPredictor.from_pretrained(tmp_path / 'nowhere', device='cpu')


def test_directory_without_config(tmp_path):
    with pytest.raises(CheckpointError, match='no config.json'):
        EvfSamPredictor.from_pretrained(tmp_path, device='cpu')


def test_directory_without_weights(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint('evf-sam2'), tmp_path / 'c')
    (ckpt / 'model.safetensors').unlink()
    with pytest.raises(CheckpointError, match='holds no weights'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')


def test_missing_tokenizer(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint('evf-sam2'), tmp_path / 'c')
    (ckpt / 'sentencepiece.bpe.model').unlink()
    with pytest.raises(CheckpointError, match='sentencepiece.bpe.model'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')


@pytest.mark.parametrize(
    'variant, name', [('evf-sam2', 'model.safetensors'), ('evf-sam', 'pytorch_model.bin')]
)
def test_truncated_weights(tiny_checkpoint, tmp_path, variant, name):
    ckpt = _copy(tiny_checkpoint(variant), tmp_path / 'c')
    data = (ckpt / name).read_bytes()
    (ckpt / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='corrupt'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')


def test_invalid_config_json(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint('evf-sam2'), tmp_path / 'c')
    (ckpt / 'config.json').write_text('{not json')
    with pytest.raises(CheckpointError, match='not valid JSON'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')


def test_unknown_sam_scale_is_a_variant_error(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint('evf-sam2'), tmp_path / 'c')
    cfg = json.loads((ckpt / 'config.json').read_text())
    cfg.update(sam_scale='colossal')
    del cfg['sam_type'], cfg['sam_config']
    (ckpt / 'config.json').write_text(json.dumps(cfg))
    with pytest.raises(VariantError, match='colossal'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')


class _Exploit:
    """Unpickling this would create a file: a stand-in for code hidden in a checkpoint."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_pickled_code_in_bin_is_refused_and_not_run(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint('evf-sam'), tmp_path / 'c')
    marker = tmp_path / 'code_ran'
    state = torch.load(ckpt / 'pytorch_model.bin', weights_only=True)
    state['payload'] = _Exploit(str(marker))
    with open(ckpt / 'pytorch_model.bin', 'wb') as f:
        torch.save(state, f, pickle_module=pickle)
    with pytest.raises(CheckpointError, match='never runs code'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')
    assert not marker.exists()


def test_wrong_variant_weights_report_shapes(tiny_checkpoint, tmp_path):
    """SAM2 weights under a SAM ViT config: strict loading lists what does not fit."""
    ckpt = _copy(tiny_checkpoint('evf-sam2'), tmp_path / 'c')
    sam_cfg = json.loads((tiny_checkpoint('evf-sam') / 'config.json').read_text())
    (ckpt / 'config.json').write_text(json.dumps(sam_cfg))
    with pytest.raises(CheckpointError, match='missing keys: visual_model.image_encoder.blocks'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')


def test_unreachable_hub_says_how_to_work_offline(tmp_path):
    code = (
        'from evf_sam_ros.model import EvfSamPredictor\n'
        "EvfSamPredictor.from_pretrained('YxZhang/evf-sam2', device='cpu')\n"
    )
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path / 'hf')}
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'HubUnavailableError' in proc.stderr
    # The commands named are the install's own (test_install_layout checks them per layout).
    assert 'Use a local checkpoint directory' in proc.stderr
    assert 'evf-sam-tiny-checkpoint <dir>' in proc.stderr
