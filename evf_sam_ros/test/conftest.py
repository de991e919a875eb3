import os

# Every process that may touch rclpy must keep DDS discovery on this host.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')

from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: tiny real-format checkpoint directory of a variant (random weights), cached
    per session. Fake only in its weights: the hub cannot be reached from here."""
    from evf_sam_ros.model.tiny import write_tiny_checkpoint

    cache: dict[tuple, Path] = {}

    def make(variant: str = "evf-sam2", image_size: int = 256, fuser_scale_name: str = "weight",
             seed: int = 0) -> Path:
        key = (variant, image_size, fuser_scale_name, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{variant}-{image_size}-{fuser_scale_name}-{seed}")
            cache[key] = write_tiny_checkpoint(out, variant, seed=seed, image_size=image_size,
                                               fuser_scale_name=fuser_scale_name)
        return cache[key]

    return make


os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))  # own DDS domain per run (1..100)


@pytest.fixture(scope="session")
def ros_client():
    """One rclpy context and client node for the session; shut down in order at the end."""
    import rclpy
    from ros_harness import Client

    client = Client()
    yield client
    client.close()
    rclpy.try_shutdown()
