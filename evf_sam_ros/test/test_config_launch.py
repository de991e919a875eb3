"""The shipped parameters file, launch file and Fast DDS profile: what can be checked without
the launch framework (not installable here) is checked, the rest by running the node."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from evf_sam_msgs.msg import Segmentation
from rcl_interfaces.srv import GetParameters
from sensor_msgs.msg import Image
from std_msgs.msg import String

from evf_sam_ros.node.settings import PARAMS
from ros_harness import image_msg, node_process, wait_for

PKG = Path(__file__).resolve().parents[1]


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_yaml_lists_every_parameter_with_its_default():
    doc = yaml.safe_load((PKG / "config" / "evf_sam.yaml").read_text())
    values = _flatten(doc["/**/evf_sam"]["ros__parameters"])
    assert values == {p.name: p.default for p in PARAMS}


def test_launch_file_arguments_and_remappings_match_the_node():
    tree = ast.parse((PKG / "launch" / "evf_sam.launch.py").read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    arguments = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    names = {k.value for k in arguments.value.keys}
    assert {"namespace", "checkpoint", "device", "image", "depth", "camera_info", "command", "use_shm"} <= names
    text = (PKG / "launch" / "evf_sam.launch.py").read_text()
    for needed in ('"evf_sam.yaml"', '"fastdds_shm.xml"', '"params_file"', 'executable="evf_sam_node"'):
        assert needed in text
    for rel in ("config/evf_sam.yaml", "config/fastdds_shm.xml"):
        assert (PKG / rel).is_file()
    setup = (PKG / "setup.py").read_text()
    assert "launch" in setup and "config" in setup


def test_fastdds_profile_is_shm_only():
    root = ET.parse(PKG / "config" / "fastdds_shm.xml").getroot()
    ns = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    assert root.find(".//f:transport_descriptor/f:type", ns).text == "SHM"
    assert int(root.find(".//f:segment_size", ns).text) >= 32 * 1024 * 1024
    assert root.find(".//f:useBuiltinTransports", ns).text == "false"


def test_node_reads_the_shipped_yaml_and_runs_with_the_shm_profile(tiny_checkpoint, tmp_path, ros_client,
                                                                   monkeypatch):
    """Start the node with config/evf_sam.yaml plus an override file, under the SHM profile."""
    c, ns = ros_client, "/shipped"
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", str(PKG / "config" / "fastdds_shm.xml"))
    override = {"checkpoint": str(tiny_checkpoint("evf-sam2")), "max_depth": 7.5, "score_threshold": 0.0}
    segs = c.collect(Segmentation, f"{ns}/segmentation")
    prompts = c.collect(String, f"{ns}/prompt", latched=True)
    with node_process(ns, override, tmp_path, extra_params=[PKG / "config" / "evf_sam.yaml"]):
        wait_for(lambda: c.lifecycle_state(f"{ns}/evf_sam") == "active", 60, "the node to become active")
        names = ["image_qos.reliability", "image_qos.depth", "max_depth", "min_depth"]
        got = c.call(GetParameters, f"{ns}/evf_sam/get_parameters", GetParameters.Request(names=names))
        values = [v.string_value or v.integer_value or v.double_value for v in got.values]
        assert values == ["reliable", 1, 7.5, 0.1]  # the file's values, the override's on top
        c.publish_when_matched(String, f"{ns}/command", String(data="the mug"))
        wait_for(lambda: prompts and prompts[-1].data == "the mug")
        c.publish_when_matched(Image, f"{ns}/image", image_msg(7))
        wait_for(lambda: any(s.header.stamp.sec == 7 for s in segs), 15, "a result through SHM")
