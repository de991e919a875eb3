import os

# Every process that may touch rclpy must keep DDS discovery on this host.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')

from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402


def _own_colcon_install_first() -> None:
    """Under `colcon test` the package's own install is on PYTHONPATH only
    (install/evf_sam_ros/lib/python3.X/site-packages), not on AMENT_PREFIX_PATH: put its prefix
    first there, as `source install/setup.bash` would, so that the tests start the node and read
    the files of the install under test (lib/evf_sam_ros/, share/evf_sam_ros/).
    """
    from evf_sam_ros.install_layout import ament_prefix, is_colcon_prefix

    for entry in os.environ.get('PYTHONPATH', '').split(os.pathsep):
        parents = Path(entry).parents if entry else ()
        prefix = next((p for p in parents if is_colcon_prefix(p)), None)
        if prefix is not None and ament_prefix() != prefix:
            paths = os.environ.get('AMENT_PREFIX_PATH', '')
            os.environ['AMENT_PREFIX_PATH'] = os.pathsep.join(filter(None, [str(prefix), paths]))
            return


def pytest_report_header(config: pytest.Config) -> str:
    """Which install of the package the node tests run (printed at the top of the run)."""
    from evf_sam_ros.install_layout import executable

    try:
        return f'evf_sam_node under test: {executable("evf_sam_node")}'
    except FileNotFoundError as exc:
        return f'evf_sam_node under test: none ({exc})'


_own_colcon_install_first()


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: tiny real-format checkpoint directory of a variant (random weights), cached
    per session. Fake only in its weights: the hub cannot be reached from here.
    """
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

    cache: dict[tuple, Path] = {}

    def make(
        variant: str = 'evf-sam2',
        image_size: int = 256,
        fuser_scale_name: str = 'weight',
        seed: int = 0,
    ) -> Path:
        key = (variant, image_size, fuser_scale_name, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f'{variant}-{image_size}-{fuser_scale_name}-{seed}')
            cache[key] = write_tiny_checkpoint(
                out, variant, seed=seed, image_size=image_size, fuser_scale_name=fuser_scale_name
            )
        return cache[key]

    return make


# own DDS domain per run (1..100)
os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 100 + 1))


@pytest.fixture(scope='session')
def ros_client():
    """One rclpy context and client node for the session; shut down in order at the end."""
    import rclpy
    from ros_harness import Client

    client = Client()
    yield client
    client.close()
    rclpy.try_shutdown()
