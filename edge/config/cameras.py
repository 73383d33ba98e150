"""Checks across the rate and motion keys of ``cameras[]`` and ``pipeline.motion`` that the
schema table cannot express: upper bounds, and motion mask polygons (shape, range, size)."""
from __future__ import annotations

from typing import Any

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
