"""Where the running install of evf_sam_ros keeps its executables, and how a person runs them.

Two layouts hold the package:

- a colcon workspace: ``install/evf_sam_ros`` is the package prefix, the console scripts are in
  ``<prefix>/lib/evf_sam_ros/`` (setup.cfg), found by ``ros2 run evf_sam_ros <name>``;
- a Python environment (the development ``.venv`` of ``make setup``, or any pip install): the
  console scripts are in the environment's ``bin/``.

The package prefix is found as ``ament_index_python.get_package_prefix`` finds it (the first
``AMENT_PREFIX_PATH`` entry holding the package's ament index marker), without importing ROS, so
the ROS-free model core can use it for its hints. Without such an entry (a pip install used
without AMENT_PREFIX_PATH) the running interpreter's environment is the prefix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = 'evf_sam_ros'
_MARKER = Path('share', 'ament_index', 'resource_index', 'packages', PACKAGE)
# This file is <checkout>/evf_sam_ros/evf_sam_ros/install_layout.py in a source checkout.
_CHECKOUT = Path(__file__).parents[2]


def ament_prefix() -> Path | None:
    """The first AMENT_PREFIX_PATH entry that holds evf_sam_ros's ament index marker, or None."""
    for entry in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if entry and (Path(entry) / _MARKER).is_file():
            return Path(entry)
    return None


def package_prefix() -> Path:
    """The prefix of the install in use: the ament index's, else the interpreter's environment."""
    return ament_prefix() or Path(sys.prefix)


def executable(name: str) -> Path:
    """Path of console script ``name`` (e.g. ``evf_sam_node``) of the install in use.

    Looks in ``<prefix>/lib/evf_sam_ros/`` (colcon; where ``ros2 run`` looks), then in
    ``<prefix>/bin/`` (pip / venv). Raises FileNotFoundError naming both places and the fix.
    """
    prefix = package_prefix()
    candidates = [prefix / 'lib' / PACKAGE / name, prefix / 'bin' / name]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        f'{name} of {PACKAGE} is not installed in {prefix} (looked for '
        f'{" and ".join(str(p) for p in candidates)}). In a colcon workspace: colcon build, then '
        f'source install/setup.bash; in this repository: make setup, and run with '
        f'AMENT_PREFIX_PATH=$PWD/.venv (the Makefile sets it).'
    )


def is_colcon_prefix(prefix: Path) -> bool:
    """True when ``prefix`` holds evf_sam_ros in colcon's layout (marker, lib/evf_sam_ros/)."""
    return (prefix / _MARKER).is_file() and (prefix / 'lib' / PACKAGE).is_dir()


def is_colcon_install() -> bool:
    """True when the package in use (the ament index's) is installed by colcon."""
    prefix = ament_prefix()
    return prefix is not None and is_colcon_prefix(prefix)


def is_source_checkout() -> bool:
    """True when this module is imported from the repository itself (``make setup``'s editable
    install), where the Makefile's targets (``make demo``) exist.
    """
    return (_CHECKOUT / 'Makefile').is_file() and (_CHECKOUT / 'evf_sam_msgs').is_dir()


def tool_command(name: str) -> str:
    """What a person types to run console script ``name`` in the install in use:
    ``ros2 run evf_sam_ros <name>`` in a colcon install, else the script's path (relative to the
    current directory when below it, e.g. ``.venv/bin/<name>``).
    """
    if is_colcon_install():
        return f'ros2 run {PACKAGE} {name}'
    script = package_prefix() / 'bin' / name
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
