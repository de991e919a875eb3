"""The README stays true: its commands, every node parameter with its default, every topic."""

from __future__ import annotations

from pathlib import Path

from evf_sam_ros.node.settings import PARAMS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_shows_the_two_commands_and_ci_calls_make_test():
    assert "make demo" in README and "make test" in README
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_documents_every_parameter_with_its_default():
    for spec in PARAMS:
        default = f'"{spec.default}"' if isinstance(spec.default, str) else (
            str(spec.default).lower() if isinstance(spec.default, bool) else str(spec.default))
        assert f"| `{spec.name}` | `{default}` |" in README, spec.name


def test_readme_lists_every_topic_service_and_action():
    for name in ("image", "command", "depth", "camera_info", "segmentation", "mask", "target_point",
                 "overlay", "prompt", "/diagnostics", "~/segment", "~/find_target"):
        assert f"| `{name}` |" in README, name
