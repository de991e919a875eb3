"""Launch evf_sam_node: ros2 launch evf_sam_ros evf_sam.launch.py image:=/camera/image_raw ...

The arguments and how they become the node's parameters (shipped YAML < params_file < checkpoint
and device given here), remappings and environment are in evf_sam_ros.node.launch_params, plain
functions that the tests check without the launch framework.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from evf_sam_ros.node import launch_params


def _node(context):
    """The node, from the launch arguments' values (resolved here, at launch time)."""
    share = Path(get_package_share_directory('evf_sam_ros'))
    values = {
        arg.name: LaunchConfiguration(arg.name).perform(context) for arg in launch_params.ARGUMENTS
    }
    return [
        Node(
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
    ]


def generate_launch_description():
    """Declare the arguments of launch_params.ARGUMENTS and start the node from them."""
    declared = [
        DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description)
        for arg in launch_params.ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_node)])
