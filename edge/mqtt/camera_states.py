"""Per-camera retained states: the camera's own discovery config, "Last recognised", the
snapshot image (small JPEG bytes, retained), the recognition switch and online status.

Runs on the publisher's worker thread only, publishing through the publisher's ``publish``.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.mqtt.entities_camera import camera_discovery
from edge.mqtt.payloads import camera_last
from edge.mqtt.topics import Topics, object_id, topic_level

log = logging.getLogger(__name__)

Publish = Callable[..., Any]
MAX_SNAPSHOT_FILE = 8 * 1024 * 1024  # a larger "snapshot" is not ours: never read it
IMAGE_QUALITY = 75


def small_jpeg(path: Path, max_side: int, quality: int = IMAGE_QUALITY) -> bytes | None:
    """The image at ``path`` re-encoded as a JPEG no larger than ``max_side`` on its longer side."""
    try:
        if path.stat().st_size > MAX_SNAPSHOT_FILE:
            return None
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        return None
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return encoded.tobytes() if ok else None


class CameraStates:
    def __init__(self, topics: Topics, publish: Publish, data_dir: Path, areas: dict[str, str | None],
                 image_max_side: int) -> None:
        self.topics = topics
        self._publish = publish
        self.snapshot_root = (Path(data_dir) / "snapshots").resolve()
        self.data_dir = Path(data_dir)
        self.areas = areas
        self.image_max_side = int(image_max_side)
        self._discovery: dict[str, str] = {}  # camera id -> last published config
        self._recognition: dict[str, str] = {}
        self._last_time: dict[str, str] = {}

    def reset(self) -> None:
        """After a (re)connect or a Home Assistant restart: publish everything again."""
        self._discovery.clear()
        self._recognition.clear()

    def publish_discovery(self, cameras: dict[str, dict[str, Any]]) -> None:
        for camera_id, camera in sorted(cameras.items()):
            payload = json.dumps(camera_discovery(self.topics, camera_id, camera,
                                                  self.areas.get(str(camera["name"])),
                                                  self.topics.availability), separators=(",", ":"))
            if self._discovery.get(camera_id) != payload:
                self._publish(self.topics.camera_discovery_config(camera_id), payload, qos=1, retain=True)
                self._discovery[camera_id] = payload

    def publish_switches(self, cameras: dict[str, dict[str, Any]]) -> None:
        for camera in cameras.values():
            self.set_recognition(str(camera["name"]), camera.get("recognition") != "OFF")

    def set_recognition(self, name: str, running: bool) -> None:
        value = "ON" if running else "OFF"
        if self._recognition.get(name) != value:
            self._publish(self.topics.camera_recognition(name), value, qos=1, retain=True)
            self._recognition[name] = value

    def retained_switch(self, level: str, configured: list[str]) -> None:
        """A retained ``camera/<level>/recognition`` read back on connect: a camera no longer
        in the settings loses its Home Assistant device and its retained states."""
        if level in {topic_level(name) for name in configured}:
            return
        log.info("camera %s is no longer configured: removing its Home Assistant device", level)
        self._publish(self.topics.camera_discovery_config(object_id(level)), "", qos=1, retain=True)
        for topic in (self.topics.camera_status(level), self.topics.camera_last(level),
                      self.topics.camera_snapshot(level), self.topics.camera_recognition(level)):
            self._publish(topic, "", qos=1, retain=True)
        self._recognition.pop(level, None)

    def event_acked(self, event: dict[str, Any], snapshot_path: str | None) -> None:
        """An acknowledged event: the camera's last recognition and its snapshot, unless a
        newer event of that camera was shown already (late events never roll it back)."""
        camera = event.get("camera")
        when = str(event.get("captured_at") or "")
        if not camera or when < self._last_time.get(camera, ""):
            return
        self._last_time[camera] = when
        self._publish(self.topics.camera_last(camera), camera_last(event), qos=1, retain=True)
        image = self._image(snapshot_path)
        if image is not None:
            self._publish(self.topics.camera_snapshot(camera), image, qos=1, retain=True)

    def _image(self, snapshot_path: str | None) -> bytes | None:
        if not snapshot_path:
            return None
        path = (self.data_dir / snapshot_path).resolve()
        if not path.is_relative_to(self.snapshot_root):
            log.warning("snapshot path %r is outside %s: not published", snapshot_path, self.snapshot_root)
            return None
        return small_jpeg(path, self.image_max_side)
