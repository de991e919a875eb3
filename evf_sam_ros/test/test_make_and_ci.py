"""The README's `make` commands are targets the Makefile really has, and CI (.ci/run) runs
`make test` and then `make test-kilted`, as the README says.

Both read the repository around this package (two levels up); a package copied out of it
skips them saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def readme() -> str:
    path = REPOSITORY / 'README.md'
    if not (path.is_file() and (REPOSITORY / 'Makefile').is_file()):
        pytest.skip(f'no README.md and Makefile at {REPOSITORY}: package outside its repository')
    if shutil.which('make') is None:
        pytest.skip('make is not installed')
    return path.read_text(encoding='utf-8')


def readme_make_targets(readme: str) -> set[str]:
    """Targets of every `make <target>` line in the README's bash blocks."""
    blocks = '\n'.join(re.findall(r'```bash\n(.*?)```', readme, re.S))
    return set(re.findall(r'^make ([\w-]+)', blocks, re.M))


def test_readme_make_commands_are_makefile_targets(readme):
    targets = readme_make_targets(readme)
    assert {'demo', 'test', 'test-kilted'} <= targets
    for target in sorted(targets):  # a dry run: prints the recipes, runs none
        run = subprocess.run(
            ['make', '-n', '-C', str(REPOSITORY), target], capture_output=True, text=True
        )
        assert run.returncode == 0, f'`make {target}` of the README: {run.stderr}'
    run = subprocess.run(
        ['make', '-n', '-C', str(REPOSITORY), 'no-such-target'], capture_output=True, text=True
    )
    assert run.returncode != 0 and 'no-such-target' in run.stderr  # the check can fail


def test_ci_runs_make_test_then_the_kilted_tests(readme, tmp_path):
    """.ci/run for real, but with a `make` that records its arguments instead of building
    (the real `make test` is this whole suite and more: it cannot run inside it).
    """
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls = tmp_path / 'calls'
    stub = bin_dir / 'make'
    stub.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    stub.chmod(0o755)
    env = {**os.environ, 'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'}
    run = subprocess.run(
        ['bash', str(REPOSITORY / '.ci' / 'run')], env=env, capture_output=True, text=True
    )
    if run.returncode != 0 and 'missing system tools' in run.stderr:
        pytest.skip(run.stderr.strip())
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == ['test', 'test-kilted']
