"""Launch evf_sam_node: ros2 launch evf_sam_ros evf_sam.launch.py image:=/camera/image_raw ...

A launch_ros LifecycleNode driven by the standard lifecycle events: configure at start, then
activate once the node reaches inactive (its own ``autostart`` off, launch_params.LAUNCHED).
The arguments and how they become the node's parameters (shipped YAML < params_file <
checkpoint and device given here), remappings, environment and the lifecycle steps are in
evf_sam_ros.node.launch_params, plain functions that the tests check without the launch
framework.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from evf_sam_ros.node import launch_params


def _change_state(node, transition: str) -> EmitEvent:
    transition_id = getattr(Transition, f'TRANSITION_{transition.upper()}')
    return EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id)
    )


def _node(context):
    """The node and its lifecycle steps, from the launch arguments' values (resolved here)."""
    share = Path(get_package_share_directory('evf_sam_ros'))
    values = {
        arg.name: LaunchConfiguration(arg.name).perform(context) for arg in launch_params.ARGUMENTS
    }
    node = LifecycleNode(
        package='evf_sam_ros',
        executable='evf_sam_node',
        name=launch_params.NODE_NAME,
        namespace=values['namespace'],
        parameters=launch_params.node_parameters(share, values),
        remappings=launch_params.node_remappings(values),
        additional_env=launch_params.shm_environment(share, values['use_shm']) or None,
        output='screen',
        emulate_tty=True,
    )
    actions = [node]
    for step in launch_params.LIFECYCLE_STEPS:
        change = _change_state(node, step.transition)
        if step.on_state is None:
            actions.append(change)  # at start
        else:
            actions.insert(
                0,
                RegisterEventHandler(
                    OnStateTransition(
                        target_lifecycle_node=node, goal_state=step.on_state, entities=[change]
                    )
                ),
            )
    return actions


def generate_launch_description():
    """Declare the arguments of launch_params.ARGUMENTS and start the node from them."""
    declared = [
        DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description)
        for arg in launch_params.ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_node)])
