"""The README stays true: its commands, every node parameter with its default, every topic, and
the robot section's launch line and `ros2 topic pub` run against the real node.

The README is the repository's (two levels above this package); it is read by a fixture, not at
collection, and a package copied out of its repository skips these tests saying so.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from ros_harness import image_msg, node_process, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import String

from evf_sam_msgs.msg import Segmentation
from evf_sam_ros.node import launch_params
from evf_sam_ros.node.interface import ACTIONS, SERVICES, TOPICS
from evf_sam_ros.node.settings import PARAMS

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def readme() -> str:
    """README.md of the repository this package sits in."""
    path = REPOSITORY / 'README.md'
    if not path.is_file():
        pytest.skip(f'no README.md at {path}: the package was built outside its repository')
    return path.read_text(encoding='utf-8')


def _robot_commands(readme: str) -> list[list[str]]:
    """The shell commands of the README's robot section (continuation lines joined), split."""
    section = readme[readme.index('## On a robot') : readme.index('### Topics')]
    blocks = re.findall(r'```bash\n(.*?)```', section, re.S)
    lines = '\n'.join(blocks).replace('\\\n', ' ').splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def _command(commands: list[list[str]], *head: str) -> list[str]:
    found = [c for c in commands if c[: len(head)] == list(head)]
    assert len(found) == 1, f'expected one `{" ".join(head)}` in the robot section: {found}'
    return found[0]


def test_readme_shows_the_two_commands_and_ci_calls_make_test(readme):
    assert 'make demo' in readme and 'make test' in readme
    ci = (REPOSITORY / '.ci' / 'run').read_text()
    assert 'make test' in ci


def _table(readme: str, start: str, end: str) -> dict[str, list[str]]:
    """Rows of the README table between headings ``start`` and ``end``: first cell (without
    backquotes) -> the other cells.
    """
    section = readme[readme.index(start) : readme.index(end)]
    rows = [
        line.strip('|').split(' | ') for line in section.splitlines() if line.startswith('| `')
    ]
    return {row[0].strip('` '): [c.strip() for c in row[1:]] for row in rows}


def _readme_default(default) -> str:
    if isinstance(default, bool):
        return f'`{str(default).lower()}`'
    return f'`"{default}"`' if isinstance(default, str) else f'`{default}`'


def test_readme_parameter_table_is_the_code_table(readme):
    """Every parameter of node.settings, no other, with its default and when it applies."""
    table = _table(readme, '### Parameters', '### How it behaves')
    assert list(table) == [p.name for p in PARAMS], 'README rows differ from settings.PARAMS'
    for spec in PARAMS:
        default, runtime = table[spec.name][:2]
        assert default == _readme_default(spec.default), spec.name
        assert runtime == ('yes' if spec.runtime else 'configure'), spec.name


def test_readme_topic_table_is_the_code_interface(readme):
    """Every topic, service and action of node.interface, no other, with its type and
    direction.
    """
    table = _table(readme, '### Topics', '### Parameters')
    code = {t.name: [t.type.replace('/msg/', '/'), t.direction] for t in TOPICS}
    code.update({s.name: [s.type, 'service'] for s in SERVICES})
    code.update({a.name: [a.type, 'action'] for a in ACTIONS})
    assert sorted(table) == sorted(code), 'README rows differ from node.interface'
    for name, (msg_type, direction) in code.items():
        assert table[name][:2] == [msg_type, direction], name


def test_readme_names_every_launch_argument(readme):
    section = readme[readme.index('## On a robot') : readme.index('### Topics')]
    for argument in launch_params.ARGUMENTS:
        assert f'`{argument.name}`' in section, argument.name


def test_readme_robot_commands_reach_the_node(readme, tiny_checkpoint, tmp_path, ros_client):
    """The launch line's arguments, as the launch file turns them into the node's remappings
    (device:=cuda replaced by the README's no-GPU variant, checkpoint:=<tiny> device:=cpu), then
    exactly the README's `ros2 topic pub`: the node takes the prompt and segments an image
    published on the remapped image topic; `ros2 topic echo` names the node's target_point.
    """
    commands = _robot_commands(readme)
    launch = _command(commands, 'ros2', 'launch', 'evf_sam_ros', 'evf_sam.launch.py')
    values = dict(arg.split(':=', 1) for arg in launch[4:])
    values.update(checkpoint=str(tiny_checkpoint('evf-sam2')), device='cpu')
    pub = _command(commands, 'ros2', 'topic', 'pub')
    topic, msg_type, data = pub[-3:]
    echo = _command(commands, 'ros2', 'topic', 'echo')
    namespace = values.get('namespace', '')
    assert echo[3] == launch_params.node_fqn(namespace).rsplit('/', 1)[0] + '/target_point'
    assert msg_type in ('std_msgs/msg/String', 'std_msgs/String')
    remaps = dict(launch_params.node_remappings(values))
    assert remaps['command'] == topic, 'the README publishes where the launch line remapped away'

    c = ros_client
    segs = c.collect(Segmentation, f'{namespace}/segmentation')
    prompts = c.collect(String, f'{namespace}/prompt', latched=True)
    params = {
        'checkpoint': values['checkpoint'],
        'device': values['device'],
        'score_threshold': 0.0,
    }
    with node_process(namespace or '/', params, tmp_path, remappings=list(remaps.items())):
        wait_for(
            lambda: c.lifecycle_state(launch_params.node_fqn(namespace)) == 'active',
            60,
            'the node to become active',
        )
        command = String(**yaml.safe_load(data))
        c.publish_when_matched(String, topic, command)
        wait_for(
            lambda: prompts and prompts[-1].data == command.data,
            10,
            f'the README prompt {command.data!r} to reach the node',
        )
        c.publish_when_matched(Image, remaps['image'], image_msg(11))
        wait_for(
            lambda: any(s.header.stamp.sec == 11 for s in segs),
            15,
            f'a segmentation of an image on {remaps["image"]}',
        )
