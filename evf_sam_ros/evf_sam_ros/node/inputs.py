"""The node's camera inputs as they arrive: the newest image for the worker, the depth
buffer matched by stamp and the newest camera_info (no rclpy; the subscriptions call in).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from evf_sam_ros.node.runtime import LatestSlot, RateMeter
from evf_sam_ros.pipeline import SourceImage, StampedBuffer


class CameraInputs:
    """Subscription callbacks only store here; the inference worker reads.

    ``frames`` holds only the newest image (an older one not taken yet is dropped and
    counted); ``last_image`` is the newest image (one-shot requests without an image use it).
    """

    def __init__(self) -> None:
        self.frames: LatestSlot[SourceImage] = LatestSlot()
        self.last_image: SourceImage | None = None
        self.depth = StampedBuffer()
        self.camera_info: Any | None = None
        self._camera_info_seen = threading.Event()
        self.rate = RateMeter()

    def on_image(self, msg: Any) -> None:
        """A sensor_msgs/Image: keep it for the worker."""
        self._put(SourceImage(msg, False, time.monotonic()))

    def on_compressed_image(self, msg: Any) -> None:
        """A sensor_msgs/CompressedImage: keep it for the worker."""
        self._put(SourceImage(msg, True, time.monotonic()))

    def _put(self, image: SourceImage) -> None:
        self.last_image = image
        self.rate.tick()
        self.frames.put(image)

    def on_depth(self, msg: Any) -> None:
        """A depth sensor_msgs/Image: buffered, matched to images by stamp."""
        self.depth.add(msg)

    def on_camera_info(self, msg: Any) -> None:
        """Keep the newest camera_info."""
        self.camera_info = msg
        self._camera_info_seen.set()

    def camera_info_now(self, wait_s: float, publisher_present: bool) -> Any | None:
        """The newest camera_info. The first one is waited for (up to ``wait_s``) while a
        publisher exists: it can arrive after the first image and depth, as late depth can.
        """
        if self.camera_info is None and publisher_present:
            self._camera_info_seen.wait(wait_s)
        return self.camera_info

    def forget(self) -> None:
        """Drop the queued frame, the last image, camera_info and depth (cleanup)."""
        self.frames.clear()
        self.last_image, self.camera_info = None, None
        self._camera_info_seen.clear()
        self.depth.clear()
