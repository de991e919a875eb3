"""The installed parameters file, Fast DDS profile and launch logic (node.launch_params,
which launch/evf_sam.launch.py calls): checked as plain functions, and by starting the installed
node with what they return, the way launch_ros passes it (params files in order, then the given
arguments as one more file; remappings as -r). The launch framework is not installable here.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator, Mapping

import pytest
import yaml
from ament_index_python.packages import get_package_share_directory
from rcl_interfaces.srv import GetParameters
from ros_harness import Client, image_msg, node_process, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import String

from evf_sam_msgs.msg import Segmentation
from evf_sam_ros.node import launch_params
from evf_sam_ros.node.launch_params import LaunchArgumentError, node_parameters
from evf_sam_ros.node.settings import PARAMS


@pytest.fixture(scope='module')
def share() -> Path:
    """share/evf_sam_ros of the install under test (the ament index's)."""
    return Path(get_package_share_directory('evf_sam_ros'))


def _write_params(path: Path, sections: dict) -> Path:
    path.write_text(yaml.safe_dump(sections))
    return path


def test_yaml_lists_every_parameter_with_its_default(share):
    doc = yaml.safe_load(launch_params.shipped_params(share).read_text())
    values = launch_params.flat_values(doc['/**/evf_sam']['ros__parameters'])
    assert values == {p.name: p.default for p in PARAMS}
    assert list(values) == [p.name for p in PARAMS], 'the YAML is in the table order'
    assert launch_params.parameter_names(launch_params.shipped_params(share)) == set(values)


def test_yaml_marks_the_runtime_parameters(share):
    """A parameter's YAML comment starts with 'runtime' exactly when it may change at runtime."""
    lines = launch_params.shipped_params(share).read_text().splitlines()
    runtime = {line.split(':')[0].strip() for line in lines if '# runtime' in line}
    leaves = {p.name.split('.')[-1]: p for p in PARAMS}
    assert runtime == {name for name, p in leaves.items() if p.runtime}


def test_installed_launch_file_and_profile_are_there(share):
    assert (share / 'launch' / 'evf_sam.launch.py').is_file()
    root = ET.parse(share / 'config' / 'fastdds_shm.xml').getroot()
    ns = {'f': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
    assert root.find('.//f:transport_descriptor/f:type', ns).text == 'SHM'
    assert int(root.find('.//f:segment_size', ns).text) >= 32 * 1024 * 1024
    assert root.find('.//f:useBuiltinTransports', ns).text == 'false'


def test_launch_arguments_leave_parameters_to_the_files_unless_given():
    names = [a.name for a in launch_params.ARGUMENTS]
    assert names == [
        'namespace',
        'params_file',
        'checkpoint',
        'device',
        'image',
        'depth',
        'camera_info',
        'command',
        'click',
        'click_negative',
        'use_shm',
    ]
    defaults = {a.name: a.default for a in launch_params.ARGUMENTS}
    assert all(defaults[name] == '' for name in launch_params.PARAMETER_ARGUMENTS)


def test_parameter_layers_are_shipped_then_user_file_then_command_line(share, tmp_path):
    shipped = launch_params.shipped_params(share)
    user = _write_params(
        tmp_path / 'mine.yaml',
        {'/**/evf_sam': {'ros__parameters': {'checkpoint': '/data/ckpt', 'device': 'cuda:1'}}},
    )
    launched = launch_params.LAUNCHED
    assert launched == {'autostart': False}  # the launch file drives the lifecycle
    assert node_parameters(share, {}) == [shipped, launched]
    assert node_parameters(share, {'params_file': str(user)}) == [shipped, user, launched]
    values = {'params_file': str(user), 'checkpoint': '', 'device': 'cpu'}
    assert node_parameters(share, values) == [shipped, user, {'device': 'cpu'}, launched]
    assert node_parameters(share, {'params_file': str(shipped), 'checkpoint': 'a/b'}) == [
        shipped,
        {'checkpoint': 'a/b'},
        launched,
    ]


@pytest.mark.parametrize(
    'content, namespace, reason',
    [
        (None, '', 'does not exist'),
        ('/**/evf_sam: [unclosed', '', 'cannot be read as YAML'),
        ('- 1\n- 2\n', '', 'expected a mapping'),
        ('/**/other_node:\n  ros__parameters: {device: cpu}\n', '', 'no ros__parameters section'),
        ('/robot/evf_sam:\n  ros__parameters: {device: cpu}\n', '', 'no ros__parameters section'),
        ('/**/evf_sam:\n  ros__parameters: {devise: cpu}\n', '', 'no parameter devise'),
        (
            'robot:\n  evf_sam:\n    ros__parameters: {image_qos: {depht: 2}}\n',
            'robot',
            'no parameter image_qos.depht',
        ),
    ],
)
def test_params_files_the_node_would_not_get_are_refused(
    share, tmp_path, content, namespace, reason
):
    path = tmp_path / 'mine.yaml'
    if content is not None:
        path.write_text(content)
    with pytest.raises(LaunchArgumentError, match=reason):
        node_parameters(share, {'params_file': str(path), 'namespace': namespace})


@pytest.mark.parametrize(
    'content, namespace',
    [
        ('/**:\n  ros__parameters: {device: cpu, some_other_nodes_param: 1}\n', ''),
        ('/robot/evf_sam:\n  ros__parameters: {device: cpu, use_sim_time: true}\n', '/robot'),
        ('robot:\n  evf_sam:\n    ros__parameters: {image_qos: {depth: 2}}\n', 'robot'),
        ('/*/evf_sam:\n  ros__parameters: {device: cpu}\n', 'robot'),
        ('evf_sam:\n  ros__parameters: {device: cpu}\n', ''),
    ],
)
def test_params_files_that_apply_to_the_node_are_taken(share, tmp_path, content, namespace):
    path = tmp_path / 'mine.yaml'
    path.write_text(content)
    assert node_parameters(share, {'params_file': str(path), 'namespace': namespace})[1] == path


def test_remappings_and_shm_environment(share):
    values = {'image': '/cam/image_raw', 'command': '/speech/command'}
    remaps = launch_params.node_remappings(values)
    assert remaps == [
        ('image', '/cam/image_raw'),
        ('depth', 'depth'),
        ('camera_info', 'camera_info'),
        ('command', '/speech/command'),
        ('click/positive', 'click/positive'),
        ('click/negative', 'click/negative'),
        ('image/compressed', '/cam/image_raw/compressed'),
    ]
    with pytest.raises(LaunchArgumentError, match='command is empty'):
        launch_params.node_remappings({'command': ''})
    profile = str(share / 'config' / 'fastdds_shm.xml')
    assert launch_params.shm_environment(share, 'True') == dict.fromkeys(
        launch_params.SHM_VARIABLES, profile
    )
    assert launch_params.shm_environment(share, 'false') == {}
    with pytest.raises(LaunchArgumentError, match='not a boolean'):
        launch_params.shm_environment(share, 'yes please')


@contextlib.contextmanager
def _launched(
    share: Path,
    values: Mapping[str, str],
    tmp: Path,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """The installed node started as the launch file starts it from ``values``; yields its
    fully qualified name once active.
    """
    layers = node_parameters(share, values)
    files = [layer for layer in layers if isinstance(layer, Path)]
    given = {k: v for layer in layers if isinstance(layer, dict) for k, v in layer.items()}
    shm = launch_params.shm_environment(share, values.get('use_shm', 'false'))
    for name, value in shm.items():
        monkeypatch.setenv(name, value)
    namespace = values.get('namespace', '')
    fqn = launch_params.node_fqn(namespace)
    with node_process(
        namespace, given, tmp, extra_params=files, remappings=launch_params.node_remappings(values)
    ):
        _drive_lifecycle(client, fqn)
        yield fqn


def _drive_lifecycle(client: Client, fqn: str) -> None:
    """What the launch file's LifecycleNode and event handlers do (launch_params.LIFECYCLE_STEPS):
    each transition at start or once the node reaches the step's state; then it is active.
    """
    from lifecycle_msgs.msg import Transition

    for step in launch_params.LIFECYCLE_STEPS:
        state = step.on_state or 'unconfigured'
        wait_for(lambda: client.lifecycle_state(fqn) == state, 60, f'{fqn} to be {state}')
        transition = getattr(Transition, f'TRANSITION_{step.transition.upper()}')
        assert client.transition(fqn, transition), f'{step.transition} of {fqn} failed'
    wait_for(lambda: client.lifecycle_state(fqn) == 'active', 60, f'{fqn} to become active')


def _parameters(client: Client, fqn: str, names: list[str]) -> list:
    got = client.call(GetParameters, f'{fqn}/get_parameters', GetParameters.Request(names=names))
    return [v.string_value or v.integer_value or v.double_value for v in got.values]


def test_params_file_keeps_its_checkpoint_and_device_unless_given(
    share, tiny_checkpoint, tmp_path, ros_client, monkeypatch
):
    """The issue's case: a params_file with checkpoint and device, no launch arguments for them:
    the node loads the file's checkpoint (it would try the hub with the shipped one and stay
    unconfigured); then checkpoint:= given on the command line wins over the file.
    """
    mine, given = str(tiny_checkpoint('evf-sam2')), str(tiny_checkpoint('evf-sam2', seed=1))
    user = _write_params(
        tmp_path / 'mine.yaml',
        {
            '/**/evf_sam': {
                'ros__parameters': {'checkpoint': mine, 'device': 'cpu', 'max_depth': 7.5}
            }
        },
    )
    values = {'namespace': '/precedence_a', 'params_file': str(user)}
    with _launched(share, values, tmp_path, ros_client, monkeypatch) as fqn:
        names = ['checkpoint', 'device', 'max_depth', 'min_depth']
        assert _parameters(ros_client, fqn, names) == [mine, 'cpu', 7.5, 0.1]
    values = {**values, 'namespace': '/precedence_b', 'checkpoint': given}
    with _launched(share, values, tmp_path, ros_client, monkeypatch) as fqn:
        assert _parameters(ros_client, fqn, ['checkpoint', 'device']) == [given, 'cpu']


def test_node_runs_with_the_shipped_yaml_under_the_shm_profile(
    share, tiny_checkpoint, tmp_path, ros_client, monkeypatch
):
    """use_shm:=true and remapped topics, as launched: a command and an image go through."""
    c, ns = ros_client, '/shipped'
    values = {
        'namespace': ns,
        'checkpoint': str(tiny_checkpoint('evf-sam2')),
        'device': 'cpu',
        'use_shm': 'true',
        'image': f'{ns}/cam/image_raw',
        'command': f'{ns}/speech',
    }
    segs = c.collect(Segmentation, f'{ns}/segmentation')
    prompts = c.collect(String, f'{ns}/prompt', latched=True)
    with _launched(share, values, tmp_path, c, monkeypatch) as fqn:
        names = ['image_qos.reliability', 'image_qos.depth', 'score_threshold']
        assert _parameters(c, fqn, names) == ['reliable', 1, 0.5]  # the shipped file's values
        c.publish_when_matched(String, f'{ns}/speech', String(data='the mug'))
        wait_for(lambda: prompts and prompts[-1].data == 'the mug')
        c.publish_when_matched(Image, f'{ns}/cam/image_raw', image_msg(7))
        wait_for(lambda: any(s.header.stamp.sec == 7 for s in segs), 15, 'a result through SHM')
