"""Node overhead beyond model time (a benchmark, not a test): conversions, queues, publishing
and DDS transport, for evf_sam_node with a tiny model.

    python benchmarks/node_overhead.py            # all modes and sizes, prints a table

Two numbers per configuration (p50 and p95 over the frames):
  node overhead: inside the node, from the image callback to the outputs published, minus
    the model call (predict_many) - conversions, queue hand-off, message building,
    publishing. The node reports it on /diagnostics (node_overhead_ms_p50/p95).
  end-to-end overhead: arrival of the Segmentation at a subscriber minus the image's
    header stamp (set when published) minus Segmentation.inference_time: adds DDS
    transport both ways and the subscriber's deserialisation.
Frames are published at 4 Hz, slower than the model, so no frame waits for another.
Modes: "in-process" (node and client in one executor), "processes" (node started as its
console script; default Fast DDS transport), "processes+shm" (both with config/fastdds_shm.xml).

    python benchmarks/node_overhead.py --mode tokens   # token ids cached vs per frame

"tokens" compares, in one run, the node in-process with the tokenizer's cache off (every
prompt tokenized again on every frame, as before the cache) and on, alternating ``--rounds``
times; it adds the model call (inference_ms from /diagnostics, which holds the tokenization)
and the cost of one ``predictor.tokenize`` call of the prompt (us).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from evf_sam_ros.pipeline.stats import percentile

REPO = Path(__file__).resolve().parents[1]
SHM_PROFILE = REPO / 'evf_sam_ros' / 'config' / 'fastdds_shm.xml'
NS = '/bench'
PROMPT = 'the red mug left of the plate, next to the blue notebook'


def _env() -> None:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
    os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 100 + 1))


def measure(client, size: tuple[int, int], frames: int, warmup: int) -> dict:
    """Publish ``warmup + frames`` images; return overhead and model-time percentiles (ms)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from evf_sam_msgs.msg import Segmentation
    from evf_sam_ros.codecs.image import array_to_imgmsg

    diagnostics: list = []
    client.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    arrivals: dict[int, tuple[float, float]] = {}
    client.create_subscription(
        Segmentation,
        f'{NS}/segmentation',
        lambda m: arrivals.setdefault(m.header.stamp.nanosec, (time.time(), m.inference_time)),
        10,
    )
    pub = client.create_publisher(Image, f'{NS}/image', 10)
    w, h = size
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    msg = array_to_imgmsg(rgb, 'rgb8')
    sent: dict[int, float] = {}
    deadline = time.time() + 60
    while pub.get_subscription_count() == 0 and time.time() < deadline:
        time.sleep(0.05)
    for i in range(warmup + frames):
        now = time.time()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), i  # nanosec carries the index
        sent[i] = now
        pub.publish(msg)
        time.sleep(0.25)
    time.sleep(1.5)
    node = {kv.key: kv.value for kv in diagnostics[-1].status[0].values} if diagnostics else {}
    overhead = [
        (arrivals[i][0] - sent[i] - arrivals[i][1]) * 1000
        for i in range(warmup, warmup + frames)
        if i in arrivals
    ]
    model = [arrivals[i][1] * 1000 for i in range(warmup, warmup + frames) if i in arrivals]
    pct = lambda v, q: round(percentile(v, q), 2)  # noqa: E731  (NaN when empty)
    return {
        'image': f'{w}x{h}',
        'received': len(overhead),
        'sent': frames,
        'node_overhead_ms_p50': float(node.get('node_overhead_ms_p50', 'nan')),
        'node_overhead_ms_p95': float(node.get('node_overhead_ms_p95', 'nan')),
        'inference_ms_p50': float(node.get('inference_ms_p50', 'nan')),
        'inference_ms_p95': float(node.get('inference_ms_p95', 'nan')),
        'end_to_end_overhead_ms_p50': pct(overhead, 50),
        'end_to_end_overhead_ms_p95': pct(overhead, 95),
        'model_ms_p50': pct(model, 50),
    }


def run_mode(
    mode: str, checkpoint: str, sizes: list[tuple[int, int]], frames: int, token_cache: bool = True
) -> list[dict]:
    """One mode, in this process (the caller set the environment for it). ``token_cache``
    False (in-process only): the tokenizer keeps no ids, every frame tokenizes again.
    """
    import rclpy

    from evf_sam_ros.model import tokenizer

    if not token_cache:
        tokenizer.TOKEN_CACHE_SIZE = 0  # read when the node's predictor is loaded
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    rclpy.init()
    executor = MultiThreadedExecutor(num_threads=4)
    client = Node('bench_client')
    executor.add_node(client)
    node, proc = None, None
    params = [
        f'checkpoint:={checkpoint}',
        'use_depth:=false',
        f'prompt:={PROMPT}',
        'score_threshold:=0.0',
        'diagnostics_period:=0.5',
    ]
    if mode == 'in-process':
        from rclpy.parameter import Parameter

        from evf_sam_ros.node.evf_sam_node import EvfSamNode
        from evf_sam_ros.node.main import autostart

        overrides = [Parameter(p.split(':=')[0], value=_value(p.split(':=')[1])) for p in params]
        node = EvfSamNode(namespace=NS, parameter_overrides=overrides)
        autostart(node)  # as `ros2 run` does
        executor.add_node(node)
    else:
        cmd = [
            str(Path(sys.executable).with_name('evf_sam_node')),
            '--ros-args',
            '-r',
            f'__ns:={NS}',
        ]
        for p in params:
            cmd += ['-p', p]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        rows = [dict(mode=mode, **measure(client, size, frames, warmup=5)) for size in sizes]
        if node is not None:
            for row in rows:
                row.update(token_cache=token_cache, tokenize_us=_tokenize_us(node.predictor))
        return rows
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(20)
        if node is not None:
            node.stop()
        executor.shutdown()
        spin.join(5)
        rclpy.try_shutdown()


def _tokenize_us(predictor, calls: int = 2000) -> float:
    """Microseconds of one ``predictor.tokenize(PROMPT)`` call (a frame makes two a prompt)."""
    start = time.perf_counter()
    for _ in range(calls):
        predictor.tokenize(PROMPT)
    return round((time.perf_counter() - start) / calls * 1e6, 2)


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return {'true': True, 'false': False}.get(text, text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--mode',
        choices=['all', 'tokens', 'in-process', 'processes', 'processes+shm'],
        default='all',
    )
    parser.add_argument(
        '--no-token-cache', action='store_true', help='in-process: tokenize on every frame'
    )
    parser.add_argument('--rounds', type=int, default=2, help='--mode tokens: off/on pairs')
    parser.add_argument(
        '--checkpoint', help='default: a tiny evf-sam2 checkpoint (image_size 256) made here'
    )
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--sizes', default='640x480,1280x720')
    args = parser.parse_args()
    _env()
    if args.checkpoint is None:
        from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

        args.checkpoint = str(
            write_tiny_checkpoint(tempfile.mkdtemp(), 'evf-sam2', image_size=256)
        )
    if args.mode == 'tokens':  # cache off, then on, alternating: drift in load hits both alike
        for _ in range(args.rounds):
            for extra in (['--no-token-cache'], []):
                _child(args, 'in-process', args.sizes.split(',')[0], dict(os.environ), extra)
        return
    if args.mode == 'all':  # each run in a fresh process (the DDS profile is read at start-up)
        for mode in ('in-process', 'processes', 'processes+shm'):
            env = dict(os.environ)
            if mode == 'processes+shm':
                env['FASTRTPS_DEFAULT_PROFILES_FILE'] = env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(
                    SHM_PROFILE
                )
            # a fresh node per size: its statistics are per size
            for size in args.sizes.split(','):
                _child(args, mode, size, env)
        return
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',')]
    cache = not args.no_token_cache
    for row in run_mode(args.mode, args.checkpoint, sizes, args.frames, token_cache=cache):
        print(json.dumps(row), flush=True)


def _child(args, mode: str, size: str, env: dict, extra: list[str] = ()) -> None:
    """This script for one mode and size in a fresh process."""
    cmd = [sys.executable, __file__, '--mode', mode, '--checkpoint', args.checkpoint]
    cmd += ['--frames', str(args.frames), '--sizes', size, *extra]
    subprocess.run(cmd, env=env, check=True)


if __name__ == '__main__':
    main()
