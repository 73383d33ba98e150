"""Camera settings checks across keys, and masking of the credentials a camera URL carries."""
from __future__ import annotations

from typing import Any

from edge import secrets
from edge.config.errors import ConfigError


def check_cameras(data: dict[str, Any], label: str) -> None:
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
