"""Checks across the keys of ``cameras[]`` and ``pipeline.motion`` that the schema table
cannot express (rates, motion mask polygons, separate credentials), and masking of the
credentials a camera URL carries."""
from __future__ import annotations

from typing import Any

from edge import secrets
from edge.config.errors import ConfigError

MAX_MASKS = 16          # polygons per camera
MAX_POINTS = 64         # points per polygon
MAX_DETECT_FPS = 120.0

# pipeline.motion keys with an upper bound (the lower bounds are in the schema table)
MOTION_UPPER = {"threshold": 255, "min_area": 1.0, "alpha": 1.0, "global_fraction": 1.0, "width": 1920}


def check_cameras(data: dict[str, Any], label: str) -> None:
    motion = data["pipeline"]["motion"]
    for key, upper in MOTION_UPPER.items():
        if motion[key] > upper:
            raise ConfigError(f"{label}: key pipeline.motion.{key}: {motion[key]!r} is above the maximum {upper:g}")
    if motion["alpha"] <= 0:
        raise ConfigError(f"{label}: key pipeline.motion.alpha: must be above 0 (the background never adapts)")
    if data["pipeline"]["detect_fps"] > MAX_DETECT_FPS:
        raise ConfigError(f"{label}: key pipeline.detect_fps: {data['pipeline']['detect_fps']!r} is above "
                          f"the maximum {MAX_DETECT_FPS:g} (0 means every frame)")
    for i, camera in enumerate(data["cameras"]):
        fps = camera.get("detect_fps")
        if fps is not None and fps > MAX_DETECT_FPS:
            raise ConfigError(f"{label}: key cameras[{i}].detect_fps: {fps!r} is above the maximum "
                              f"{MAX_DETECT_FPS:g} (0 means every frame)")
        check_masks(camera.get("motion_masks") or [], label, f"cameras[{i}].motion_masks")


def check_masks(masks: list[Any], label: str, key: str) -> None:
    """Each mask a polygon of 3 to MAX_POINTS ``[x, y]`` points, fractions of the frame (0 to 1)."""
    if len(masks) > MAX_MASKS:
        raise ConfigError(f"{label}: key {key}: {len(masks)} polygons, at most {MAX_MASKS}")
    for j, polygon in enumerate(masks):
        where = f"{key}[{j}]"
        if not 3 <= len(polygon) <= MAX_POINTS:
            raise ConfigError(f"{label}: key {where}: a polygon needs 3 to {MAX_POINTS} points, got {len(polygon)}")
        for k, point in enumerate(polygon):
            if len(point) != 2:
                raise ConfigError(f"{label}: key {where}[{k}]: a point is [x, y], got {len(point)} number(s)")
            if not all(0.0 <= float(v) <= 1.0 for v in point):
                raise ConfigError(f"{label}: key {where}[{k}]: {point!r}: x and y are fractions of the frame, "
                                  "from 0 to 1 (0,0 is the top left)")


def check_camera_credentials(data: dict[str, Any], label: str) -> None:
    """The separate credentials only go with a URL source, and a camera has one password."""
    for i, camera in enumerate(data.get("cameras") or []):
        has = [k for k in ("username", "password", "password_file") if camera.get(k)]
        if not has:
            continue
        if "://" not in str(camera.get("source")):
            raise ConfigError(f"{label}: key cameras[{i}]: {', '.join(has)} only apply to a URL source "
                              "(rtsp://, http://)")
        if camera.get("password") and camera.get("password_file"):
            raise ConfigError(f"{label}: key cameras[{i}]: set password or password_file, not both")


def register_camera_secrets(data: dict[str, Any]) -> None:
    for camera in data.get("cameras") or []:
        if isinstance(camera.get("source"), str):
            secrets.register_url(camera["source"])


def mask_camera_urls(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a settings document, changed in place) with camera URL passwords masked."""
    for camera in data.get("cameras") or []:
        if isinstance(camera, dict) and isinstance(camera.get("source"), str):
            camera["source"] = secrets.mask_url(camera["source"])
    return data
