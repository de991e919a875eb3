"""`make demo`'s program end to end (tiny checkpoint, real node, live replay) and its offline
message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_demo_runs_end_to_end_with_a_local_checkpoint(tiny_checkpoint, tmp_path):
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'evf_sam_ros.tools.demo',
            '--checkpoint',
            str(tiny_checkpoint('evf-sam2')),
            '--out',
            str(out),
            '--frames',
            '8',
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = json.loads(proc.stdout.splitlines()[0])  # the sample image's summary
    assert first['prompt'] == 'the red mug left of the plate' and first['variant'] == 'evf-sam2'
    assert (out / 'sample_mask.png').is_file() and (out / 'sample_overlay.png').is_file()
    report = json.loads((out / 'replay' / 'report.json').read_text())
    assert report['frames']['in'] == 8 and report['frames']['processed'] >= 1
    assert (out / 'replay' / 'contact_sheet.png').is_file()


def test_demo_without_the_hub_names_the_offline_option(tmp_path):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path / 'hf')}
    proc = subprocess.run(
        [sys.executable, '-m', 'evf_sam_ros.tools.demo', '--out', str(tmp_path / 'o')],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    assert 'make demo CHECKPOINT=' in proc.stderr and 'evf-sam-tiny-checkpoint' in proc.stderr
    assert 'Traceback' not in proc.stderr
