"""The node's interface table (node.interface) and parameter table (node.settings) hold
together: every handler named is a Handlers field and every field is used; every callback
group exists; every type loads from the installed interface packages, and a type that cannot
load names its package and the command that installs it; NodeSettings and PARAMS are one
table (types, defaults, ROS names).
"""

from __future__ import annotations

import dataclasses

import pytest
from rclpy.qos import QoSProfile

from evf_sam_ros.node.interface import (
    ACTIONS,
    GROUPS,
    SERVICES,
    TOPICS,
    Handlers,
    interface_types,
)
from evf_sam_ros.node.interface_types import MissingInterfaceError, load_type, missing_types
from evf_sam_ros.node.parameters import default_settings
from evf_sam_ros.node.settings import PARAMS, SPECS, NodeSettings


def _handler_names() -> list[str]:
    names = [t.handler for t in TOPICS if t.direction == 'in'] + [s.handler for s in SERVICES]
    events = ['incompatible_qos'] if any(t.qos_events for t in TOPICS) else []
    return names + [n for a in ACTIONS for n in (a.goal, a.execute)] + events


def test_every_handler_is_a_handlers_field_and_every_field_is_used():
    names = _handler_names()
    fields = [f.name for f in dataclasses.fields(Handlers)]
    assert sorted(names) == sorted(fields), 'the table and Handlers name different handlers'
    assert not [t.name for t in TOPICS if t.direction == 'out' and t.handler]


def test_names_are_unique_and_groups_exist():
    names = [e.name for e in (*TOPICS, *SERVICES, *ACTIONS)]
    assert len(names) == len(set(names))
    groups = [t.group for t in TOPICS if t.direction == 'in'] + [s.group for s in SERVICES]
    assert set(groups) | {a.group for a in ACTIONS} <= set(GROUPS)


def test_every_type_loads_and_every_qos_is_a_profile():
    settings = default_settings({'compressed_input': True, 'image_qos.depth': 3})
    assert missing_types(interface_types()) == []
    assert load_type('sensor_msgs/msg/Image').__name__ == 'Image'
    for topic in TOPICS:
        assert isinstance(topic.qos(settings), QoSProfile), topic.name
    image = {t.name: t for t in TOPICS}
    assert image['depth'].qos(settings).depth == 5  # at least DEPTH_HISTORY_DEPTH
    assert image['image'].qos(settings).depth == 3
    assert image['image/compressed'].when(settings) and not image['image'].when(settings)


@pytest.mark.parametrize(
    'name, match',
    [
        ('no_such_msgs/msg/Thing', r'no_such_msgs is not installed: run `rosdep install'),
        ('sensor_msgs/msg/NoSuchType', r'sensor_msgs/msg/NoSuchType.*rosdep install'),
        ('evf_sam_msgs/msg/Missing', r'evf_sam_msgs package is not built'),
    ],
)
def test_a_type_that_cannot_load_names_its_package_and_the_fix(name, match):
    with pytest.raises(MissingInterfaceError, match=match):
        load_type(name)
    assert len(missing_types(['std_msgs/msg/String', name])) == 1


def test_a_type_name_spelled_wrong_is_refused():
    with pytest.raises(ValueError, match='not spelled package/msg'):
        load_type('sensor_msgs/Image')


def test_node_settings_is_the_parameter_table():
    defaults = NodeSettings()
    assert defaults.values() == {p.name: p.default for p in PARAMS}
    hints = {f.name: f.type for f in dataclasses.fields(NodeSettings)}
    for spec in PARAMS:
        assert hints[spec.field] == type(spec.default).__name__, spec.name
        assert spec.name.replace('.', '_') == spec.field
    assert SPECS['image_qos.depth'].field == 'image_qos_depth'
    changed = defaults.updated({'image_qos.depth': 4, 'max_rate': 2.0})
    assert (changed.image_qos_depth, changed.max_rate) == (4, 2.0)
    assert NodeSettings.from_values(changed.values()) == changed


def test_default_settings_checks_combinations():
    with pytest.raises(ValueError, match='min_depth .* must not exceed max_depth'):
        default_settings({'min_depth': 5.0, 'max_depth': 1.0})


def test_launch_remaps_only_inputs_of_the_interface():
    from evf_sam_ros.node import launch_params

    inputs = {t.name for t in TOPICS if t.direction == 'in'}
    assert set(launch_params.TOPICS) <= inputs
