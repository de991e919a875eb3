"""Print gpu_check.sh's results as one markdown report (reads the JSON rows it collected).

    python benchmarks/gpu_table.py ROWS.jsonl [--dump-dir DIR]

Rows with "table": "model" (gpu_suite.py), "official" (official_benchmark.py), "start"
(start_check.py) and "correctness" (gpu_correctness.py) get their own sections; rows of any
other table (e.g. a tracker benchmark) are listed as flattened key=value lines, so a new
benchmark only has to print JSON rows with a "table" key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

SIZES = ('640x480', '1280x720')
MODE_NAMES = {'eager': 'eager', 'graphs': 'CUDA graphs', 'compile': 'compile + graphs'}


def _cells(*values: Any) -> str:
    """One markdown table row."""
    return '| ' + ' | '.join(str(v) for v in values) + ' |'


def _ms(entry: Any) -> str:
    return f'{entry["p50"]:.1f} / {entry["p95"]:.1f}' if entry else '-'


def _official_p50(rows: list[dict], variant: str, size: str) -> float | None:
    for row in rows:
        if (
            row.get('table') == 'official'
            and row['variant'] == variant.replace('-multitask', '')
            and size in row
        ):
            return row[size]['end_to_end_ms']['p50']
    return None


def model_table(rows: list[dict]) -> list[str]:
    """Variant x mode x dtype rows: end to end, stages, 2nd prompt, 4 prompts, memory, start."""
    header = (
        'variant',
        'mode',
        'dtype',
        '640x480 p50 / p95 ms',
        '1280x720 p50 / p95 ms',
        'preprocess / encoder / BEiT-3 / decoder / post p50 ms (640x480)',
        '2nd prompt p50 ms',
        '4 prompts p50 ms (x one)',
        'peak MB',
        'start s',
        'IoU / max dlogit/std vs fp32 exact',
        'x official (640x480)',
    )
    out = [
        _cells(*header),
        '|---' * len(header) + '|',
    ]
    for row in rows:
        if row.get('table') != 'model':
            continue
        head = f'| {row["variant"]} | {MODE_NAMES[row["mode"]]} | {row["dtype"]} '
        if 'skipped' in row:
            out.append(head + f'| skipped: {row["skipped"]} |' + ' |' * 9)
            continue
        small = row.get(SIZES[0], {})
        stages = small.get('stages_ms', {})
        stage_text = ' / '.join(
            f'{stages[k]["p50"]:.1f}' if k in stages else '-'
            for k in ('preprocess', 'image_encoder', 'beit3', 'decoder', 'postprocess')
        )
        one, four = small.get('end_to_end_ms'), small.get('four_prompts_ms')
        ratio = f' ({four["p50"] / one["p50"]:.2f}x)' if one and four else ''
        official = _official_p50(rows, row['variant'], SIZES[0])
        speedup = f'{official / one["p50"]:.1f}x' if official and one else '-'
        agree = row['vs_fp32_exact']
        out.append(
            head
            + f'| {_ms(one)} | {_ms(row.get(SIZES[1], {}).get("end_to_end_ms"))} | {stage_text} | '
            f'{small.get("second_prompt_ms", {}).get("p50", "-")} | '
            f'{four["p50"] if four else "-"}{ratio} | {small.get("peak_memory_mb", "-")} | '
            f'{row["start_s"]} | {agree["iou"]:.4f} / {agree["rel_logit"]:.4f} | {speedup} |'
        )
    return out


def official_table(rows: list[dict]) -> list[str]:
    out = [
        _cells(
            'official inference.py',
            'dtype',
            '640x480 p50 / p95 ms',
            '1280x720 p50 / p95 ms',
            'peak MB',
            'code',
        ),
        '|---' * 6 + '|',
    ]
    for row in rows:
        if row.get('table') == 'official':
            times = [_ms(row.get(size, {}).get('end_to_end_ms')) for size in SIZES]
            out.append(
                _cells(row['variant'], row['dtype'], *times, row['peak_memory_mb'], row['code'])
            )
    return out


def start_table(rows: list[dict]) -> list[str]:
    out = [
        '| start | variant | mode | dtype | process start -> first result s | imports s | '
        'from_pretrained s | first frame ms |',
        '|---' * 8 + '|',
    ]
    for row in rows:
        if row.get('table') == 'start':
            keys = (
                'process_to_first_result_s',
                'imports_s',
                'from_pretrained_s',
                'first_frame_ms',
            )
            out.append(
                _cells(
                    row['label'],
                    row['variant'],
                    MODE_NAMES[row['mode']],
                    row['dtype'],
                    *(row[k] for k in keys),
                )
            )
    return out


def fidelity_lines(dump_dir: Path) -> list[str]:
    """Official vs ours on the same random weights (640x480): float32 both, and each side's
    CUDA default (official fp16 autocast; ours fp16 eager, device preprocessing).
    """
    out = []
    for official in sorted(dump_dir.glob('official_*_fp32.npy')):
        variant = official.name[len('official_') : -len('_fp32.npy')]
        ours = dump_dir / f'ours_{variant}-multitask_fp32_exact.npy'
        if ours.is_file():
            a, b = np.load(ours), np.load(official)
            union = np.logical_or(a > 0, b > 0).sum()
            iou = np.logical_and(a > 0, b > 0).sum() / union if union else 1.0
            rel = np.abs(a - b).max() / b.std()
            out.append(
                f'- {variant}, float32, same weights: ours (multitask regime = inference.py '
                f'at HEAD) vs official: mask IoU {iou:.5f}, max|dlogit|/std {rel:.2e}'
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('rows')
    parser.add_argument('--dump-dir', default=None)
    args = parser.parse_args()
    rows = []
    for line in Path(args.rows).read_text().splitlines():
        line = line.strip()
        if line.startswith('{'):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                print(f'(unreadable row: {line[:80]})')
    machines = sorted({r['machine'] for r in rows if 'machine' in r})
    print(
        f'## gpu_check: {", ".join(machines) or "no rows"}; torch '
        f'{", ".join(sorted({r["torch"] for r in rows if "torch" in r}))}; weights random\n'
    )
    for section in (model_table(rows), official_table(rows), start_table(rows)):
        if len(section) > 2:
            print('\n'.join(section) + '\n')
    if args.dump_dir:
        print('\n'.join(fidelity_lines(Path(args.dump_dir))) + '\n')
    known = {'model', 'official', 'start'}
    for row in rows:
        if row.get('table') not in known:
            print(
                f'- {row.get("table", "row")}: '
                + ', '.join(f'{k}={v}' for k, v in row.items() if k != 'table')
            )
    return 0


if __name__ == '__main__':
    sys.exit(main())
