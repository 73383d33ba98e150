"""``facepro doctor``: one command that tells an installer whether the device is ready.

Each check returns a :class:`Check` (PASS, WARN, FAIL or INFO) with a one-line detail and,
for WARN and FAIL, the fix. Checks never raise: a crashing check is itself a FAIL. The
probes belong to the parts that own them (pipeline, MQTT, backup, telemetry); this module
only calls them and words the fixes.
"""
from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import logging
import os
import shutil
import sqlite3
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from edge.config import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)

PASS, WARN, FAIL, INFO = "PASS", "WARN", "FAIL", "INFO"
MIN_YEAR = 2020
TEGRA_RELEASE = Path("/etc/nv_tegra_release")


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _probe(module: str, name: str) -> Callable[..., Any]:
    """A probe function from the part that owns it (imported late: doctor must run even
    when one part's dependencies are broken, and then say so)."""
    return getattr(importlib.import_module(module), name)


# -- individual checks ---------------------------------------------------------------

def check_settings(config: str | None, env: dict[str, str] | None = None) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(config, env=env)
    except ConfigError as exc:
        return Check("settings", FAIL, str(exc),
                     "correct the file and key named here; `facepro config check` validates the file"), None
    source = settings.source
    if source is None:
        return Check("settings", WARN, "no device settings file: running on the shipped defaults",
                     "pass --config /etc/facepro/settings.json or set FACEPRO_CONFIG"), settings
    mode = stat.S_IMODE(source.stat().st_mode)
    if mode & 0o004:
        return Check("settings", WARN, f"{source}: readable by every user (mode {mode:04o}) and may hold passwords",
                     f"chmod 0640 {source}; chown root:facepro {source}"), settings
    return Check("settings", PASS, f"{source} is valid"), settings


def check_device_id(settings: Settings) -> Check:
    from edge.device_id import ID_FILE, peek_device_id

    configured = settings["device.id"]
    device_id = peek_device_id(configured, settings.data_dir)
    if configured:
        if device_id is None:
            return Check("device id", FAIL, f"device.id {configured!r} is not a valid id",
                         "use letters, digits, '_' and '-' only (max 64), or null to derive it")
        return Check("device id", PASS, f"{device_id} (device.id in settings)")
    if device_id is None:
        return Check("device id", INFO, f"not created yet: the first start writes {settings.data_dir / ID_FILE}")
    return Check("device id", PASS, f"{device_id} (MQTT username, topics and Home Assistant ids use it)")


def check_clock(now: dt.datetime | None = None) -> Check:
    now = now or dt.datetime.now(dt.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if now.year < MIN_YEAR:
        return Check("clock", FAIL, f"system time is {stamp}: the device has no RTC time and no NTP",
                     "enable time sync (timedatectl set-ntp true; allow UDP 123 to an NTP server) or set the "
                     "time (timedatectl set-time); events, backups and TLS need a correct clock")
    return Check("clock", PASS, f"system time {stamp}")


def check_disk(settings: Settings) -> Check:
    data_dir = settings.data_dir
    probe_dir = data_dir
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    usage = shutil.disk_usage(probe_dir)
    free_mb = usage.free / 2**20
    min_mb = float(settings["events.min_free_mb"])
    detail = f"{data_dir}: {free_mb:,.0f} MB free of {usage.total / 2**20:,.0f} MB (minimum {min_mb:,.0f} MB)"
    if not data_dir.exists():
        return Check("disk", WARN, f"{detail}; the data dir does not exist yet",
                     f"it is created on first start (systemctl start facepro), or: install -d -o facepro {data_dir}")
    if not os.access(data_dir, os.W_OK):
        return Check("disk", FAIL, f"{data_dir} is not writable by this user",
                     f"chown -R facepro:facepro {data_dir}")
    if free_mb < min_mb:
        return Check("disk", FAIL, detail, "free space on the data disk (old events, snapshots, local backups) "
                     "or lower events.retention_days")
    if free_mb < 2 * min_mb:
        return Check("disk", WARN, detail, "free space soon: lower events.retention_days or move backups off the device")
    return Check("disk", PASS, detail)


def check_database(settings: Settings) -> Check:
    from edge.db.connection import connect
    from edge.db.migrator import MigrationError, Migrator

    path = settings.db_path
    if not path.exists():
        return Check("database", WARN, f"{path} does not exist yet",
                     "it is created with the schema on the service's first start (systemctl start facepro) "
                     "or by `facepro migrate up`")
    try:
        conn = connect(path, readonly=True, busy_timeout_ms=settings["database.busy_timeout_ms"])
    except sqlite3.Error as exc:
        return Check("database", FAIL, f"{path}: cannot open: {exc}",
                     f"check the file's owner (chown facepro {path}) or restore a backup")
    try:
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            return Check("database", FAIL, f"{path}: integrity_check: {'; '.join(integrity[:3])}",
                         "stop the service and restore the latest backup (facepro backup restore ARCHIVE)")
        migrator = Migrator(conn)
        status = migrator.status()
    except (sqlite3.Error, MigrationError) as exc:
        return Check("database", FAIL, f"{path}: {exc}",
                     "stop the service and restore the latest backup (facepro backup restore ARCHIVE)")
    finally:
        conn.close()
    version, latest = status["current_version"], status["latest_version"]
    if status["problems"]:
        return Check("database", FAIL, f"{path}: {status['problems'][0]}",
                     "see `facepro migrate status`; restore the migration files or a backup")
    if status["pending"]:
        return Check("database", WARN, f"{path}: schema version {version:03d}, {len(status['pending'])} "
                     f"migration(s) pending (latest {latest:03d})",
                     "restart the service (it migrates at start) or run `facepro migrate up`")
    return Check("database", PASS, f"{path}: schema version {version:03d} (current), integrity ok")


def check_model_pack(settings: Settings) -> Check:
    import numpy as np

    load_model_pack = _probe("edge.pipeline.pack", "load_model_pack")
    pack_error = _probe("edge.pipeline.pack", "ModelPackError")
    models_dir = settings.models_dir
    fix = (f"install a model pack into {models_dir}: deploy/install.sh --models PATH (a directory or .zip "
           "holding a SCRFD detector and an ArcFace embedder), or point paths.models_dir at one")
    try:
        pack = load_model_pack(models_dir, providers=settings["pipeline.providers"],
                               threads=settings["pipeline.intra_op_threads"],
                               det_max_side=settings["pipeline.det_max_side"],
                               max_faces=settings["pipeline.max_faces"],
                               det_threshold=settings["recognition.det_threshold"],
                               cache_dir=settings.data_dir / "cache" / "tensorrt")
    except pack_error as exc:
        return Check("model pack", FAIL, str(exc), fix)
    problem = _verify_manifest(models_dir)
    if problem:
        return Check("model pack", FAIL, problem, fix)
    # One inference through each model: a grey frame (no faces) and one face-shaped crop.
    from edge.pipeline.embedder import ARCFACE_TEMPLATE

    frame = np.full((480, 640, 3), 127, dtype=np.uint8)
    t0 = time.perf_counter()
    faces = pack.detector.detect(frame)
    t1 = time.perf_counter()
    keypoints = (ARCFACE_TEMPLATE.astype(np.float32) + 200.0)[None, :, :]
    embedding = np.array(pack.embedder.embed(frame, keypoints), copy=True)
    t2 = time.perf_counter()
    if embedding.shape != (1, pack.embedder.dim) or not np.all(np.isfinite(embedding)):
        return Check("model pack", FAIL, f"{models_dir}: the embedder returned {embedding.shape} "
                     "or non-finite values", fix)
    info = pack.info()
    det, emb = info["detector"], info["embedder"]
    return Check("model pack", PASS,
                 f"{models_dir}: detector {det['file']} on {det['provider']} ({(t1 - t0) * 1000:.0f} ms, "
                 f"{len(faces)} faces in a blank frame), embedder {emb['file']} on {emb['provider']} "
                 f"(dim {emb['dim']}, {(t2 - t1) * 1000:.0f} ms)")


def _verify_manifest(models_dir: Path) -> str | None:
    """Files listed in the pack's SHA256SUMS (written by deploy/install.sh) must match."""
    import hashlib

    manifest = models_dir / "SHA256SUMS"
    if not manifest.is_file():
        return None
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        path = models_dir / name.strip()
        if not path.is_file():
            return f"{path}: listed in {manifest} but missing"
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        if sha.hexdigest() != digest.strip():
            return f"{path}: SHA-256 does not match {manifest} (corrupted or replaced)"
    return None


def check_providers(settings: Settings) -> Check:
    available = _probe("edge.pipeline.runtime", "available_providers")()
    configured = list(settings["pipeline.providers"])
    usable = [p for p in configured if p in available]
    dists = {d: _installed(d) for d in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino")}
    flavours = [name for name, version in dists.items() if version]
    if len(flavours) > 1:
        return Check("onnxruntime", FAIL, f"several onnxruntime builds installed side by side: {', '.join(flavours)}",
                     "uninstall all of them, then reinstall one: deploy/install.sh --flavour cpu|gpu|jetson")
    build = f"{flavours[0]} {dists[flavours[0]]}" if flavours else "onnxruntime"
    if not usable:
        return Check("onnxruntime", FAIL, f"{build}: none of the configured providers "
                     f"({', '.join(configured)}) is available (available: {', '.join(available)})",
                     "add CPUExecutionProvider to pipeline.providers or install the matching onnxruntime build")
    absent = [p for p in configured if p not in available]
    detail = f"{build}: using {usable[0]}; available {', '.join(available)}"
    if absent:
        detail += f"; configured but absent: {', '.join(absent)}"
    if _nvidia_present() and not any(p in available for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
        return Check("onnxruntime", WARN, detail + "; an NVIDIA GPU is present but unused",
                     "install the GPU build: deploy/install.sh --flavour gpu (or jetson on a Jetson)")
    return Check("onnxruntime", PASS, detail)


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_present() -> bool:
    return TEGRA_RELEASE.exists() or Path("/proc/driver/nvidia").exists()


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


def check_camera(camera: dict[str, Any], timeout_s: float, health: dict[str, Any] | None = None) -> Check:
    name = f"camera {camera['name']}"
    if not camera.get("enabled", True):
        return Check(name, INFO, "disabled in settings")
    probe_source = _probe("edge.pipeline.sources", "probe_source")
    result = probe_source(camera, timeout_s=timeout_s)
    if result.get("ok"):
        fps = f"{result['fps']:g} fps" if result.get("fps") else "fps unknown"
        return Check(name, PASS, f"{result['width']}x{result['height']}, {fps}")
    error = str(result.get("error") or "no frame")
    source_kind = _probe("edge.pipeline.sources", "source_kind")
    exclusive = source_kind(camera["source"]) in ("usb", "gstreamer")
    if exclusive and health is not None and f"camera {camera['name']} is offline" not in health["reasons"]:
        # A V4L2/CSI camera opens once: while the running service holds it, a second open
        # fails. Files and URLs open any number of times, so their failure stands.
        return Check(name, PASS, f"online in the running service (a second open here failed: {error})")
    return Check(name, FAIL, error, _camera_fix(camera))


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
        return "check the GStreamer pipeline with `gst-launch-1.0` (see deploy/JETSON.md)"
    return f"cameras[].source {text}: the file must exist, be readable by facepro and hold a decodable video"


def _known_device_id(settings: Settings) -> str | None:
    """The id this device has or will take at its first start, if that is knowable now."""
    from edge.device_id import derive_from_machine_id, peek_device_id

    return peek_device_id(settings["device.id"], settings.data_dir) or derive_from_machine_id()


def _device_id_for_probe(settings: Settings) -> str:
    return _known_device_id(settings) or "facepro-unprovisioned"


def check_mqtt(settings: Settings, timeout_s: float) -> Check:
    if not settings["mqtt.enabled"]:
        return Check("mqtt", INFO, "disabled (mqtt.enabled is false)")
    probe_broker = _probe("edge.mqtt.client", "probe_broker")
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
    check_target = _probe("edge.backup.target_specs", "check_target")
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


def check_gpu() -> Check:
    result = _probe("edge.telemetry.gpu", "probe_gpu")()
    if result.get("available"):
        parts = [f"{key} {result[key]}" for key in ("name", "gpu_percent", "temperature_c", "memory_used_mb")
                 if result.get(key) is not None]
        return Check("gpu telemetry", PASS, f"source {result.get('source')}" + (": " + ", ".join(parts) if parts else ""))
    reason = result.get("reason") or "no GPU source"
    if TEGRA_RELEASE.exists():
        return Check("gpu telemetry", WARN, f"unavailable on this Jetson: {reason}",
                     "install jetson-stats (pip install jetson-stats) and enable its service: "
                     "systemctl enable --now jtop (deploy/JETSON.md)")
    return Check("gpu telemetry", INFO, f"no GPU telemetry: {reason}")


# -- running them ----------------------------------------------------------------------

def _guarded(name: str, func: Callable[..., Check], *args: Any, **kwargs: Any) -> Check:
    try:
        return func(*args, **kwargs)
    except ImportError as exc:
        return Check(name, FAIL, f"cannot load the probe: {exc}",
                     "reinstall facepro with its dependencies (deploy/install.sh)")
    except Exception as exc:  # a check must never take doctor down
        log.debug("check %s crashed", name, exc_info=True)
        return Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "run with --log-level debug and report it")


def run_checks(config: str | None = None, env: dict[str, str] | None = None,
               timeout_s: float = 10.0) -> list[Check]:
    """Every check, in the order an installer fixes things."""
    settings_check, settings = check_settings(config, env)
    checks = [settings_check]
    if settings is None:
        checks.append(_guarded("clock", check_clock))
        return checks
    checks.append(_guarded("clock", check_clock))
    checks.append(_guarded("device id", check_device_id, settings))
    checks.append(_guarded("disk", check_disk, settings))
    checks.append(_guarded("database", check_database, settings))
    health = service_health(settings)
    checks.append(_guarded("service", check_service, settings, health))
    checks.append(_guarded("onnxruntime", check_providers, settings))
    checks.append(_guarded("model pack", check_model_pack, settings))
    cameras = settings["cameras"]
    if not cameras:
        checks.append(Check("cameras", WARN, "no camera configured",
                            "add one under cameras[] in the settings file (name and source)"))
    for camera in cameras:
        checks.append(_guarded(f"camera {camera['name']}", check_camera, camera, timeout_s, health))
    checks.append(_guarded("mqtt", check_mqtt, settings, min(timeout_s, 10.0)))
    targets = settings["backup.targets"]
    if not targets:
        checks.append(Check("backups", WARN, "no backup target configured",
                            "add a USB drive or network share under backup.targets[]"))
    min_free = backup_room_needed(settings)
    device_id = _known_device_id(settings)
    for target in targets:
        checks.append(_guarded(f"backup {target['name']}", check_backup_target, target, min_free, device_id))
    checks.append(_guarded("gpu telemetry", check_gpu))
    return checks


def summary(checks: list[Check]) -> dict[str, int]:
    counts = {PASS: 0, WARN: 0, FAIL: 0, INFO: 0}
    for check in checks:
        counts[check.status] += 1
    return counts


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'CHECK':<{width}}  STATUS  DETAIL"]
    for check in checks:
        lines.append(f"{check.name:<{width}}  {check.status:<6}  {check.detail}")
        if check.fix and check.status in (FAIL, WARN):
            lines.append(f"{'':<{width}}  {'':<6}  fix: {check.fix}")
    counts = summary(checks)
    verdict = "NOT READY" if counts[FAIL] else "ready"
    lines.append(f"{counts[PASS]} passed, {counts[WARN]} warning(s), {counts[FAIL]} failed: {verdict}")
    return "\n".join(lines)
