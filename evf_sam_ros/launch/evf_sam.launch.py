"""Launch evf_sam_node: ros2 launch evf_sam_ros evf_sam.launch.py image:=/camera/color/image_raw ..."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {  # name: (default, description)
    "namespace": ("", "namespace of the node and its relative topics"),
    "checkpoint": ("YxZhang/evf-sam2", "hub id or local checkpoint directory (overrides params_file)"),
    "device": ("auto", "auto, cpu, cuda, cuda:N (overrides params_file)"),
    "image": ("image", "colour image topic (sensor_msgs/Image)"),
    "depth": ("depth", "depth aligned to the colour image (16UC1 mm or 32FC1 m)"),
    "camera_info": ("camera_info", "camera_info of the colour image"),
    "command": ("command", "std_msgs/String prompts"),
    "use_shm": ("false", "use config/fastdds_shm.xml (shared memory transport for large images)"),
}


def generate_launch_description():
    share = FindPackageShare("evf_sam_ros")
    arg = LaunchConfiguration
    node = Node(
        package="evf_sam_ros", executable="evf_sam_node", name="evf_sam", namespace=arg("namespace"),
        parameters=[arg("params_file"),
                    {"checkpoint": arg("checkpoint"), "device": arg("device")}],
        remappings=[(topic, arg(topic)) for topic in ("image", "depth", "camera_info", "command")]
        + [("image/compressed", [arg("image"), "/compressed"])],
        output="screen", emulate_tty=True)
    shm = [SetEnvironmentVariable(var, PathJoinSubstitution([share, "config", "fastdds_shm.xml"]),
                                  condition=IfCondition(arg("use_shm")))
           for var in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")]  # Jazzy, Kilted
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    declared.append(DeclareLaunchArgument(
        "params_file", default_value=PathJoinSubstitution([share, "config", "evf_sam.yaml"]),
        description="parameters YAML (default: the package's config/evf_sam.yaml)"))
    return LaunchDescription([*declared, *shm, node])
