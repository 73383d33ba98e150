"""Doctor checks of what the device talks to: the running service, cameras, MQTT, backup targets."""
from __future__ import annotations

import logging
from typing import Any

from edge.config import Settings
from edge.doctor.check import FAIL, INFO, PASS, WARN, Check

log = logging.getLogger(__name__)

def service_health(settings: Settings, timeout_s: float = 3.0) -> dict[str, Any] | None:
    """The running service's ``/api/health`` ({status, reasons}), or None when it does not answer."""
    import json
    import urllib.error
    import urllib.request

    if not settings["web.enabled"] or not settings["web.port"]:
        return None
    host = settings["web.host"]
    host = "127.0.0.1" if host in ("", "0.0.0.0") else ("[::1]" if host == "::" else host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"http://{host}:{settings['web.port']}/api/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 carries the reasons
        try:
            body = json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or "status" not in body:
        return None
    return {"url": url, "status": body["status"], "reasons": list(body.get("reasons") or [])}


def check_service(settings: Settings, health: dict[str, Any] | None) -> Check:
    if not settings["web.enabled"] or not settings["web.port"]:
        return Check("service", INFO, "cannot tell whether facepro runs: its status page is off (web.enabled, web.port)")
    if health is None:
        return Check("service", WARN, "facepro is not running (its status page does not answer)",
                     "systemctl start facepro; if it stops again: journalctl -u facepro -e")
    if health["status"] == "ok":
        return Check("service", PASS, f"running and healthy ({health['url']})")
    return Check("service", WARN, "running but unhealthy: " + "; ".join(health["reasons"]),
                 "see the other checks and journalctl -u facepro -e")


def check_camera(camera: dict[str, Any], timeout_s: float, health: dict[str, Any] | None = None,
                 probes: dict[str, dict[str, Any]] | None = None) -> Check:
    """Open the camera and decode a frame; the probe result also goes into ``probes``."""
    name = f"camera {camera['name']}"
    if not camera.get("enabled", True):
        return Check(name, INFO, "disabled in settings")
    from edge.pipeline.probe import probe_source
    result = probe_source(camera, timeout_s=timeout_s)
    if probes is not None:
        probes[camera["name"]] = result
    if result.get("ok"):
        fps = f"{result['fps']:g} fps" if result.get("fps") else "fps unknown"
        decoder = f", {result['decoder']}" if result.get("decoder") else ""
        return Check(name, PASS, f"{result['width']}x{result['height']}, {fps}{decoder}")
    error = str(result.get("error") or "no frame")
    if result.get("ffmpeg"):
        error += " (FFmpeg: " + " | ".join(result["ffmpeg"][-2:]) + ")"
    from edge.pipeline.capture import source_kind
    exclusive = source_kind(camera["source"]) in ("usb", "gstreamer")
    if exclusive and health is not None and f"camera {camera['name']} is offline" not in health["reasons"]:
        # A V4L2/CSI camera opens once: while the running service holds it, a second open
        # fails. Files and URLs open any number of times, so their failure stands.
        return Check(name, PASS, f"online in the running service (a second open here failed: {error})")
    return Check(name, FAIL, error, result.get("fix") or _camera_fix(camera))


def _camera_fix(camera: dict[str, Any]) -> str:
    source = camera["source"]
    text = str(source)
    if isinstance(source, int) or text.startswith("/dev/video"):
        return ("plug the USB camera in and check it is listed by `v4l2-ctl --list-devices` (ls /dev/video*); "
                "the facepro user must be in group video")
    if "://" in text:
        return ("check the camera is powered and reachable from the device (ping, `ffprobe URL`), and the URL, "
                "user and password in cameras[].source")
    if "!" in text:
        return ("check the GStreamer pipeline with `gst-launch-1.0` (end it in `! fakesink` there, in `! appsink` "
                "in the settings; see deploy/JETSON.md)")
    return f"cameras[].source {text}: the file must exist, be readable by facepro and hold a decodable video"


def known_device_id(settings: Settings) -> str | None:
    """The id this device has or will take at its first start, if that is knowable now."""
    from edge.device_id import derive_from_machine_id, peek_device_id

    return peek_device_id(settings["device.id"], settings.data_dir) or derive_from_machine_id()


def _device_id_for_probe(settings: Settings) -> str:
    return known_device_id(settings) or "facepro-unprovisioned"


def check_mqtt(settings: Settings, timeout_s: float) -> Check:
    if not settings["mqtt.enabled"]:
        return Check("mqtt", INFO, "disabled (mqtt.enabled is false)")
    from edge.mqtt.client import probe_broker
    result = probe_broker(settings, _device_id_for_probe(settings), timeout_s=timeout_s)
    if result.get("ok"):
        return Check("mqtt", PASS, str(result.get("detail")))
    detail = str(result.get("detail"))
    if "refused" in detail and ("auth" in detail.lower() or "password" in detail.lower()):
        fix = "check mqtt.username / mqtt.password and the broker's password_file and ACL (deploy/MQTT.md)"
    else:
        fix = (f"check that the broker runs (systemctl status mosquitto), that mqtt.host/mqtt.port "
               f"({settings['mqtt.host']}:{settings['mqtt.port']}) are right and a firewall lets the device in "
               "(deploy/MQTT.md)")
    return Check("mqtt", FAIL, detail, fix)


def check_backup_target(target: dict[str, Any], min_free_bytes: int, device_id: str | None = None) -> Check:
    name = f"backup {target['name']}"
    if not target.get("enabled", True):
        return Check(name, INFO, "disabled in settings")
    from edge.backup.target_specs import check_target
    result = check_target(target, min_free_bytes=min_free_bytes, device_id=device_id)
    if result.get("ok"):
        return Check(name, PASS, str(result.get("detail")))
    detail = str(result.get("detail"))
    if "free" in detail and result.get("free_bytes") is not None:
        return Check(name, FAIL, detail, f"make room on the target: facepro backup prune --target {target['name']} "
                     "(or a lower keep), or use a larger drive/share")
    return Check(name, FAIL, detail, _backup_fix(target))


def backup_room_needed(settings: Settings) -> int:
    """Free space a target needs: room for two more backups of today's database and faces
    (an upper bound: archives are compressed), at least 100 MiB."""
    total = 0
    for path in (settings.db_path, settings.data_dir / "faces"):
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return max(100 * 2**20, 2 * total)


def _backup_fix(target: dict[str, Any]) -> str:
    kind = target["type"]
    if kind in ("usb", "mounted"):
        where = target.get("path") or target.get("label") or target.get("uuid")
        return (f"plug in and mount the drive so that {where} is its mount point (a plain directory is not "
                "a drive), writable by facepro; or disable the target")
    if kind == "smb":
        return ("check backup.targets[].server/share/port/username/password, that the share allows the user "
                "to write, and that the device reaches the server (SMB port)")
    return f"create {target.get('path')} writable by facepro (install -d -o facepro PATH) and free space there"

