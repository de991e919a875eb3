"""Command-line round trips: tiny checkpoint writer and evf-sam-segment, in their own processes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', module, *args], capture_output=True, text=True, timeout=300
    )


def test_tiny_checkpoint_then_segment_round_trip(tmp_path):
    ckpt = tmp_path / 'tiny'
    made = _run(
        'evf_sam_ros.tools.tiny_checkpoint',
        str(ckpt),
        '--variant',
        'evf-sam2-multitask',
        '--image-size',
        '256',
    )
    assert made.returncode == 0, made.stderr
    assert {
        'config.json',
        'model.safetensors',
        'sentencepiece.bpe.model',
        'added_tokens.json',
    } <= {p.name for p in ckpt.iterdir()}
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'in.png')
    out = _run(
        'evf_sam_ros.tools.segment',
        '--checkpoint',
        str(ckpt),
        '--image',
        str(tmp_path / 'in.png'),
        '--prompt',
        'the red mug',
        '--out-mask',
        str(tmp_path / 'm.png'),
        '--out-overlay',
        str(tmp_path / 'o.png'),
        '--device',
        'cpu',
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary['variant'] == 'evf-sam2-multitask' and summary['device'] == 'cpu'
    assert set(summary['latency_ms']) >= {
        'preprocess',
        'image_encoder',
        'beit3',
        'decoder',
        'postprocess',
        'total',
    }
    mask = np.asarray(Image.open(tmp_path / 'm.png'))
    assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255}
    assert int((mask == 255).sum()) == summary['area']
    overlay = np.asarray(Image.open(tmp_path / 'o.png'))
    assert overlay.shape == (48, 64, 3)


def test_segment_reports_errors_in_one_line_with_exit_2(tmp_path, tiny_checkpoint):
    missing = _run(
        'evf_sam_ros.tools.segment',
        '--checkpoint',
        str(tiny_checkpoint('evf-sam2')),
        '--image',
        str(tmp_path / 'nope.png'),
        '--prompt',
        'mug',
    )
    assert missing.returncode == 2 and 'does not exist' in missing.stderr
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'ok.png')
    empty = _run(
        'evf_sam_ros.tools.segment',
        '--checkpoint',
        str(tiny_checkpoint('evf-sam2')),
        '--image',
        str(tmp_path / 'ok.png'),
        '--prompt',
        '  ',
    )
    assert empty.returncode == 2 and 'prompt is empty' in empty.stderr
    assert 'Traceback' not in empty.stderr
