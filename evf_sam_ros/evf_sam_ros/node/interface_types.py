"""Loading the message, service and action types the node's interface names
(``sensor_msgs/msg/Image``), with an error that says which package is missing and how to
install it.
"""

from __future__ import annotations

import importlib

from evf_sam_ros.model.errors import EvfSamError


class MissingInterfaceError(EvfSamError):
    """Raised when an interface type cannot be loaded (its package is not installed or not
    built); the message names the package and the command that installs it.
    """


def load_type(name: str) -> type:
    """The Python class of ``name`` ('pkg/msg/Type', 'pkg/srv/Type' or 'pkg/action/Type').
    Raises MissingInterfaceError when its package or the type cannot be imported.
    """
    package, kind, type_name = _split(name)
    try:
        module = importlib.import_module(f'{package}.{kind}')
        return getattr(module, type_name)
    except (ImportError, AttributeError) as exc:
        raise MissingInterfaceError(
            f'cannot load {name} ({type(exc).__name__}: {exc}): {install_hint(package)}'
        ) from exc


def missing_types(names: list[str]) -> list[str]:
    """The reason for each of ``names`` that cannot be loaded (empty when all load)."""
    reasons = []
    for name in names:
        try:
            load_type(name)
        except MissingInterfaceError as exc:
            reasons.append(str(exc))
    return reasons


def install_hint(package: str) -> str:
    """What to run when ``package`` (a ROS interface package) is missing."""
    if package == 'evf_sam_msgs':
        return (
            'the evf_sam_msgs package is not built or not sourced: build it with the workspace '
            '(colcon build --packages-select evf_sam_msgs evf_sam_ros) and source '
            'install/setup.bash'
        )
    apt = 'ros-${ROS_DISTRO}-' + package.replace('_', '-')
    return (
        f'the package {package} is not installed: run `rosdep install --from-paths src '
        f'--ignore-src -y` in the workspace (or `sudo apt install {apt}`)'
    )


def _split(name: str) -> tuple[str, str, str]:
    parts = name.split('/')
    if len(parts) != 3 or parts[1] not in ('msg', 'srv', 'action') or not all(parts):
        raise ValueError(f'interface type {name!r} is not spelled package/msg|srv|action/Type')
    return parts[0], parts[1], parts[2]
