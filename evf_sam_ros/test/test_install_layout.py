"""The install under test works as installed: its console scripts are where this layout keeps
them (colcon: lib/evf_sam_ros/, as `ros2 run` finds them; the development .venv: bin/), run with
an interpreter that has the model stack, and a hub checkpoint that cannot be had gets a hint in
this install's own commands. Runs in both layouts (make test runs it in the .venv and again under
`colcon test` in a workspace).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import diagnostics_values, node_log, node_process, wait_for

from evf_sam_ros.install_layout import PACKAGE, executable, is_colcon_install, package_prefix

HINT_NS = '/offline_hint'


def _offline_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp / 'hf')}


def test_every_console_script_is_where_this_layout_keeps_it():
    scripts = entry_points(group='console_scripts')
    names = {ep.name for ep in scripts if ep.value.startswith(PACKAGE)}
    assert {'evf_sam_node', 'evf-sam-tiny-checkpoint', 'evf-sam-segment'} <= names
    expected_dir = package_prefix() / ('lib/evf_sam_ros' if is_colcon_install() else 'bin')
    for name in sorted(names):
        assert executable(name) == expected_dir / name


def test_installed_script_runs_with_the_model_stack(tmp_path):
    """The script's first line names the interpreter colcon (or pip) ran with: torch, sam2 and
    the installed package must import there.
    """
    script = executable('evf-sam-tiny-checkpoint')
    proc = subprocess.run(
        [str(script), str(tmp_path / 'tiny'), '--variant', 'evf-sam2', '--image-size', '256'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / 'tiny' / 'config.json').is_file()


def _expected_hint(relative_to: Path) -> list[str]:
    """This install's commands: ``ros2 run`` / launch argument in a colcon workspace, else the
    script's path (relative to the process's current directory when below it).
    """
    if is_colcon_install():
        return ['ros2 run evf_sam_ros evf-sam-tiny-checkpoint <dir>', 'checkpoint:=<dir>']
    script = executable('evf-sam-tiny-checkpoint')
    with contextlib.suppress(ValueError):
        script = script.relative_to(relative_to)
    return [f'`{script} <dir>`']


def test_cli_offline_hint_names_this_installs_commands(tmp_path):
    image = package_prefix() / 'share' / PACKAGE / 'data' / 'sample_tabletop.png'
    proc = subprocess.run(
        [
            str(executable('evf-sam-segment')),
            '--checkpoint',
            'YxZhang/evf-sam2',
            '--image',
            str(image),
            '--prompt',
            'the mug',
            '--device',
            'cpu',
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_offline_env(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    for text in _expected_hint(tmp_path):
        assert text in proc.stderr
    assert ('make demo' in proc.stderr) == (not is_colcon_install())


def test_node_offline_hint_names_this_installs_commands(tmp_path, ros_client, monkeypatch):
    """The node of this install, with the hub unreachable: unconfigured, and /diagnostics says
    what to run instead in this install's words.
    """
    for name, value in _offline_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    diags = ros_client.collect(DiagnosticArray, '/diagnostics')
    node = f'{HINT_NS}/evf_sam'
    with node_process(
        HINT_NS, {'checkpoint': 'YxZhang/evf-sam2', 'diagnostics_period': 0.3}, tmp_path
    ):
        values = wait_for(lambda: diagnostics_values(diags, node), 60, 'diagnostics of the node')
        assert values['level'] == '2' and 'Hugging Face hub' in values['message']
        assert ros_client.lifecycle_state(node) == 'unconfigured'
    log = node_log(tmp_path, HINT_NS)  # the full message (/diagnostics keeps 500 characters)
    for text in _expected_hint(Path.cwd()):
        assert text in log
    assert ('make demo' in log) == (not is_colcon_install())
