"""Launch arguments of evf_sam.launch.py -> evf_sam_node's parameters, remappings,
environment and lifecycle steps, as plain functions and tables: the launch file calls them, and
tests check them by starting the node the same way, without the launch framework (not
installable here).

Parameter precedence, lowest first: the shipped ``config/evf_sam.yaml``, the user's
``params_file``, then the parameter arguments given on the command line (``checkpoint``,
``device``). A parameter argument left empty (its default) is not given and overrides nothing,
so a params_file keeps its own checkpoint and device. Over all of them ``LAUNCHED`` turns the
node's ``autostart`` off: the launch file drives the lifecycle (``LIFECYCLE_STEPS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

NODE_NAME = 'evf_sam'
#: Remapped input topics; the launch argument of each is its name unless ARGUMENT_OF says.
TOPICS = ('image', 'depth', 'camera_info', 'command', 'click/positive', 'click/negative')
ARGUMENT_OF = {'click/positive': 'click', 'click/negative': 'click_negative'}
PARAMETER_ARGUMENTS = ('checkpoint', 'device')
# The Fast DDS profile variable of Jazzy (Fast DDS 2) and of Kilted (Fast DDS 3).
SHM_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
# Parameters every rclpy node has besides its own (Jazzy).
_RCLPY_PARAMETERS = frozenset({'use_sim_time', 'start_type_description_service'})
_TRUE, _FALSE = ('true', '1'), ('false', '0')  # what launch's IfCondition accepts

ParameterLayer = Path | dict[str, Any]

#: Given to the node last by the launch file: its LifecycleNode drives the transitions.
LAUNCHED: dict[str, Any] = {'autostart': False}


@dataclass(frozen=True)
class LifecycleStep:
    """A transition the launch file asks for: at start (``on_state`` None), or when the node
    reaches ``on_state`` (launch_ros's OnStateTransition event handler).
    """

    transition: str
    on_state: str | None


#: The standard lifecycle launch: configure at start, activate once inactive.
LIFECYCLE_STEPS = (LifecycleStep('configure', None), LifecycleStep('activate', 'inactive'))


@dataclass(frozen=True)
class Argument:
    """A launch argument: its name, default (a string, as launch has them) and description."""

    name: str
    default: str
    description: str


ARGUMENTS: tuple[Argument, ...] = (
    Argument('namespace', '', 'namespace of the node and its relative topics'),
    Argument(
        'params_file',
        '',
        'your parameters YAML, applied over the shipped '
        'config/evf_sam.yaml (empty: the shipped file only)',
    ),
    Argument(
        'checkpoint',
        '',
        'hub id or local checkpoint directory; given, it overrides '
        'params_file (empty: params_file, else the shipped YAML)',
    ),
    Argument(
        'device',
        '',
        'auto, cpu, cuda, cuda:N; given, it overrides params_file '
        '(empty: params_file, else the shipped YAML)',
    ),
    Argument('image', 'image', 'colour image topic (sensor_msgs/Image)'),
    Argument('depth', 'depth', 'depth aligned to the colour image (16UC1 mm or 32FC1 m)'),
    Argument('camera_info', 'camera_info', 'camera_info of the colour image'),
    Argument('command', 'command', 'std_msgs/String prompts'),
    Argument(
        'click',
        'click/positive',
        "positive correction clicks (geometry_msgs/Point), e.g. rqt_image_view's "
        '<image topic>_mouse_left',
    ),
    Argument(
        'click_negative', 'click/negative', 'negative correction clicks (geometry_msgs/Point)'
    ),
    Argument(
        'use_shm',
        'false',
        'true: use config/fastdds_shm.xml (shared-memory transport for large images)',
    ),
)


class LaunchArgumentError(ValueError):
    """A launch argument that cannot be used; the message says which and what to do."""


def shipped_params(share: Path) -> Path:
    """The package's parameters file under its share directory ``share``."""
    return share / 'config' / 'evf_sam.yaml'


def node_parameters(share: Path, values: Mapping[str, str]) -> list[ParameterLayer]:
    """The node's ``parameters`` list, lowest precedence first: the shipped YAML, the user's
    params_file (checked: see ``check_params_file``), a dict of the parameter arguments given
    (non-empty), then LAUNCHED. ``values`` maps argument names to their strings; missing ones
    are empty.
    Raises LaunchArgumentError for a params_file that cannot be used.
    """
    shipped = shipped_params(share)
    layers: list[ParameterLayer] = [shipped]
    user = values.get('params_file', '').strip()
    if user:
        path = Path(user).expanduser()
        check_params_file(path, node_fqn(values.get('namespace', '')), parameter_names(shipped))
        if path.resolve() != shipped.resolve():
            layers.append(path)
    given = {name: values[name] for name in PARAMETER_ARGUMENTS if values.get(name, '')}
    if given:
        layers.append(given)
    return [*layers, dict(LAUNCHED)]


def node_remappings(values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(from, to) remappings of the input topics (TOPICS); ``image/compressed`` follows
    ``image``.
    """
    remaps = []
    for topic in TOPICS:
        argument = ARGUMENT_OF.get(topic, topic)
        target = values.get(argument, topic).strip()
        if not target:
            raise LaunchArgumentError(
                f'launch argument {argument} is empty: give a topic name (default: {topic})'
            )
        remaps.append((topic, target))
    remaps.append(('image/compressed', dict(remaps)['image'].rstrip('/') + '/compressed'))
    return remaps


def shm_environment(share: Path, use_shm: str) -> dict[str, str]:
    """Environment variables for the node: the Fast DDS SHM profile when ``use_shm`` is true."""
    flag = use_shm.strip().lower()
    if flag not in _TRUE + _FALSE:
        raise LaunchArgumentError(f'use_shm:={use_shm!r} is not a boolean: give true or false')
    if flag in _FALSE:
        return {}
    profile = str(share / 'config' / 'fastdds_shm.xml')
    return {name: profile for name in SHM_VARIABLES}


def node_fqn(namespace: str) -> str:
    """The node's fully qualified name in ``namespace`` (e.g. ``/robot/evf_sam``)."""
    namespace = namespace.strip('/')
    return f'/{namespace}/{NODE_NAME}' if namespace else f'/{NODE_NAME}'


def parameter_names(params_file: Path) -> set[str]:
    """Dotted names of every parameter in a parameters YAML file, any section."""
    names: set[str] = set()
    for _key, parameters in _sections(_load_yaml(params_file), params_file):
        names.update(flat_values(parameters))
    return names


def parameter_values(params_file: Path, fqn: str | None = None) -> dict[str, Any]:
    """The values a parameters YAML file gives the node ``fqn`` (dotted names; later sections
    win, as in rcl). ``fqn`` None: the node in any namespace (sections keyed ``.../evf_sam``,
    ``/*`` or ``/**``). Raises LaunchArgumentError for a file that is not parameters YAML.
    """
    values: dict[str, Any] = {}
    for key, parameters in _sections(_load_yaml(params_file), params_file):
        tokens = [t for t in key.split('/') if t]
        if (
            _matches(key, fqn)
            if fqn is not None
            else bool(tokens) and tokens[-1] in (NODE_NAME, '*', '**')
        ):
            values.update(flat_values(parameters))
    return values


def check_params_file(path: Path, fqn: str, known: set[str]) -> None:
    """Refuse a params_file whose values the node would silently not get: missing or not YAML,
    no section that applies to node ``fqn``, or, in a section named for this node, a parameter
    the node does not have (``known``: the shipped YAML's names).
    """
    if not path.is_file():
        raise LaunchArgumentError(
            f'params_file {path} does not exist: give a parameters YAML '
            f'file (see config/evf_sam.yaml of the package)'
        )
    sections = list(_sections(_load_yaml(path), path))
    applying = [(key, params) for key, params in sections if _matches(key, fqn)]
    if not applying:
        keys = ', '.join(key for key, _ in sections) or 'none'
        raise LaunchArgumentError(
            f'params_file {path} has no ros__parameters section for the node {fqn} (sections: '
            f'{keys}); name it /**/{NODE_NAME} (or /** for every node)'
        )
    allowed = known | _RCLPY_PARAMETERS
    for key, params in applying:
        unknown = sorted(set(flat_values(params)) - allowed)
        if unknown and not key.endswith('*'):
            raise LaunchArgumentError(
                f'params_file {path}, section {key}: the node has no parameter '
                f'{", ".join(unknown)} (its parameters: {", ".join(sorted(known))})'
            )


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LaunchArgumentError(f'params_file {path} cannot be read as YAML: {exc}') from exc


def _sections(tree: Any, path: Path, prefix: str = '') -> Iterator[tuple[str, Any]]:
    """(node key, its ros__parameters) of every section; nested keys joined with '/'."""
    if not isinstance(tree, dict):
        raise LaunchArgumentError(
            f'params_file {path}: expected a mapping of node names to '
            f'ros__parameters, found {type(tree).__name__} at '
            f'{prefix or "the top level"}'
        )
    for key, value in tree.items():
        name = f'{prefix}/{str(key).strip("/")}'
        if isinstance(value, dict) and 'ros__parameters' in value:
            yield name, value['ros__parameters'] or {}
        else:
            yield from _sections(value, path, name)


def _matches(key: str, fqn: str) -> bool:
    """Rcl's rule for a params-file node key: '/*' is one name token, '/**' any number."""
    tokens = [t for t in key.split('/') if t]
    pattern = ''.join(
        r'(/\w+)*' if t == '**' else r'(/\w+)' if t == '*' else '/' + re.escape(t) for t in tokens
    )
    return re.fullmatch(pattern, fqn) is not None


def flat_values(tree: Any, prefix: str = '') -> dict[str, Any]:
    """A ros__parameters mapping as {dotted name: value} (``image_qos: {depth: 1}`` gives
    ``image_qos.depth``).
    """
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flat_values(value, f'{prefix}{key}.'))
    return out
