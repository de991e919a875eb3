"""Fleet replay (many bags, one command): real bags written here (mcap, sqlite3, ROS 1), a real
tiny checkpoint, real worker processes and a real local Ray instance started by the test.

A bag's results must be identical whether it ran alone, in a local worker or on Ray.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evf_sam_ros.replay import cli
from evf_sam_ros.replay.fleet import bag_names, expand_bags, is_fleet
from evf_sam_ros.replay.fleet_report import results_digest
from evf_sam_ros.replay.sample_bag import write_sample_bag

SIZE = (64, 48)
#: (name, storage or "ros1", frames): six small bags of three storage kinds
BAGS = [
    ('a_mcap', 'mcap', 3),
    ('b_sqlite', 'sqlite3', 2),
    ('c_ros1', 'ros1', 3),
    ('d_mcap', 'mcap', 2),
    ('e_sqlite', 'sqlite3', 3),
    ('f_ros1', 'ros1', 2),
]
NAMES = [n for n, _, _ in BAGS] + ['g_broken', 'h_no_prompt']
BROKEN = 'g_broken.bag'  # not a bag: cannot be replayed
NO_PROMPT = 'h_no_prompt'  # a bag whose command is empty: replayed, but no frame processed


@pytest.fixture(scope='module')
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint('evf-sam2', image_size=64)


@pytest.fixture(scope='module')
def bag_dir(tmp_path_factory):
    """Six good bags and one ROS 1 file that is not a bag, in one folder."""
    root = tmp_path_factory.mktemp('fleet_bags')
    for name, storage, frames in BAGS:
        if storage == 'ros1':
            write_sample_bag(root / f'{name}.bag', frames=frames, size=SIZE, bag_format='ros1')
        else:
            write_sample_bag(root / name, storage, frames, SIZE)
    (root / BROKEN).write_bytes(b'#ROSBAG V2.0\nthis is not a bag')
    write_sample_bag(root / NO_PROMPT, 'mcap', 2, SIZE, prompt='')
    return root


def _args(checkpoint, out, *extra):
    """The options of every replay here: tiny model on the CPU, every result counted found."""
    common = '--device cpu --score-threshold 0.0 --no-video --quiet'.split()
    return ['--checkpoint', str(checkpoint), '-o', str(out), *common, *extra]


def _fleet(out):
    return json.loads((out / 'fleet_report.json').read_text())


@pytest.fixture(scope='module')
def alone(checkpoint, bag_dir, tmp_path_factory):
    """Each good bag replayed alone (one-bag evf-sam-replay): name -> results digest."""
    digests = {}
    for bag in expand_bags([str(bag_dir)]):
        if bag.name in (BROKEN, NO_PROMPT):
            continue
        out = tmp_path_factory.mktemp(f'alone_{bag.stem}')
        assert cli.main([str(bag), *_args(checkpoint, out)]) == 0
        digests[bag_names([bag])[0]] = results_digest(out)
    return digests


def test_bags_found_in_folders_and_globs(bag_dir, tmp_path):
    found = expand_bags([str(bag_dir)])
    assert [bag_names([b])[0] for b in found] == NAMES
    assert expand_bags([str(bag_dir / '*.bag')]) == sorted(bag_dir.glob('*.bag'))
    with pytest.raises(Exception, match='no file matches'):
        expand_bags([str(tmp_path / 'nothing*')])
    with pytest.raises(Exception, match='no bags in'):
        expand_bags([str(tmp_path)])
    twin = tmp_path / 'other' / 'a_mcap'
    twin.mkdir(parents=True)
    (twin / 'metadata.yaml').write_text('')
    names = bag_names([bag_dir / 'a_mcap', twin])
    assert names[0].startswith('a_mcap-') and names[1].startswith('a_mcap-')
    assert names[0] != names[1]
    parser = cli.build_parser()
    assert not is_fleet(parser.parse_args([str(bag_dir / 'a_mcap'), '-o', 'x']))
    assert is_fleet(parser.parse_args([str(bag_dir), '-o', 'x']))
    assert is_fleet(parser.parse_args([str(bag_dir / '*.bag'), '-o', 'x']))


def _check_fleet(data, alone, engine):
    assert data['engine'] == engine
    by_name = {b['name']: b for b in data['bags']}
    assert list(by_name) == NAMES
    assert [f['name'] for f in data['failed']] == ['g_broken', NO_PROMPT]
    assert 'bag' in by_name['g_broken']['reason'].lower() and 'frames' not in by_name['g_broken']
    assert 'no prompt' in by_name[NO_PROMPT]['reason']
    assert by_name[NO_PROMPT]['frames']['in'] == 2  # replayed, its report written
    for name, _, frames in BAGS:
        bag = by_name[name]
        assert bag['status'] == 'ok' and bag['frames']['in'] == frames
        assert bag['results_sha256'] == alone[name], name
        assert bag['iou_frames'] == frames and 0.0 <= bag['iou_mean'] <= 1.0
        assert Path(bag['output'], 'report.json').is_file()
    total = data['total']
    assert (total['ok'], total['failed'], total['bags']) == (6, 2, 8)
    assert total['frames']['in'] == sum(f for _, _, f in BAGS) + 2
    assert total['results'] == total['frames']['processed'] == sum(f for _, _, f in BAGS)
    assert total['latency_ms']['p50'] > 0


def test_local_workers(checkpoint, bag_dir, alone, tmp_path):
    out = tmp_path / 'fleet'
    assert cli.main([str(bag_dir), *_args(checkpoint, out, '--workers', '2')]) == 1
    data = _fleet(out)
    _check_fleet(data, alone, 'local')
    assert (data['workers'], data['threads_per_worker']) == (2, max(1, os.cpu_count() // 2))
    assert 'TOTAL' in (out / 'fleet_report.txt').read_text()
    assert len({b['worker'] for b in data['bags'] if b['status'] == 'ok'}) <= 2

    # a second run refuses to overwrite; --resume keeps the bags with a report (the one
    # without a prompt fails again, from its report) and retries the broken bag
    with pytest.raises(Exception, match='--resume to keep them'):
        cli.run([str(bag_dir), *_args(checkpoint, out, '--workers', '2')])
    stamp = (out / 'a_mcap' / 'report.json').stat().st_mtime_ns
    assert cli.main([str(bag_dir), *_args(checkpoint, out, '--resume')]) == 1
    again = _fleet(out)
    assert [(b['status'], b['resumed']) for b in again['bags']] == [('ok', True)] * 6 + [
        ('failed', False),
        ('failed', True),
    ]
    assert (out / 'a_mcap' / 'report.json').stat().st_mtime_ns == stamp
    assert again['total']['frames'] == data['total']['frames']
    assert [b.get('results_sha256') for b in again['bags']] == [
        b.get('results_sha256') for b in data['bags']
    ]


@pytest.fixture
def local_ray(monkeypatch):
    """A local Ray instance (2 CPUs, listening on 127.0.0.1 only, no dashboard, no usage
    statistics) started in this process for the test and shut down after it.
    """
    from evf_sam_ros.replay.fleet_ray import LOOPBACK_ENV, RAY_ENV

    for name, value in {**RAY_ENV, **LOOPBACK_ENV}.items():
        monkeypatch.setenv(name, value)  # before ray is imported: it reads them then
    ray = pytest.importorskip('ray')
    ray.init(address='local', num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.mark.timeout(600)
def test_ray_cluster(checkpoint, bag_dir, alone, local_ray, tmp_path):
    """Six bags on the test's Ray instance, 2 at a time, from a separate driver process."""
    out = tmp_path / 'fleet_ray'
    assert local_ray.startswith('127.0.0.1:')
    command = [sys.executable, '-m', 'evf_sam_ros.replay.cli', str(bag_dir)]
    command += _args(checkpoint, out, '--ray', local_ray, '--workers', '2')
    done = subprocess.run(command, capture_output=True, text=True, timeout=480)
    assert done.returncode == 1, done.stderr
    data = _fleet(out)
    _check_fleet(data, alone, 'ray')
    assert (data['ray_address'], data['threads_per_worker']) == (local_ray, 1)
    assert len({b['worker'] for b in data['bags'] if b['status'] == 'ok'}) <= 2
