"""``facepro doctor``: one command that tells an installer whether the device is ready.

Each check returns a :class:`Check` (PASS, WARN, FAIL or INFO) with a one-line detail and,
for WARN and FAIL, the fix. Checks never raise: a crashing check is itself a FAIL. The
probes belong to the parts that own them (pipeline, MQTT, backup, telemetry); this module
only calls them and words the fixes.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from edge.doctor.check import FAIL, INFO, PASS, WARN, Check
from edge.doctor.load import check_camera_load
from edge.doctor.local import (
    check_clock,
    check_database,
    check_device_id,
    check_disk,
    check_settings,
)
from edge.doctor.models import check_gpu, check_model_pack, check_providers
from edge.doctor.remote import (
    backup_room_needed,
    check_backup_target,
    check_camera,
    check_mqtt,
    check_service,
    known_device_id,
    service_health,
)

__all__ = ["FAIL", "INFO", "PASS", "WARN", "Check", "backup_room_needed", "check_backup_target", "check_camera",
           "check_camera_load", "check_clock", "check_database", "check_device_id", "check_disk", "check_gpu", "check_model_pack",
           "check_mqtt", "check_providers", "check_service", "check_settings", "format_table", "run_checks",
           "service_health", "summary"]

log = logging.getLogger(__name__)


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
    probes: dict[str, dict[str, Any]] = {}
    for camera in cameras:
        checks.append(_guarded(f"camera {camera['name']}", check_camera, camera, timeout_s, health, probes))
    if probes:
        checks.append(_guarded("camera load", check_camera_load, settings, probes))
    checks.append(_guarded("mqtt", check_mqtt, settings, min(timeout_s, 10.0)))
    targets = settings["backup.targets"]
    if not targets:
        checks.append(Check("backups", WARN, "no backup target configured",
                            "add a USB drive or network share under backup.targets[]"))
    min_free = backup_room_needed(settings)
    device_id = known_device_id(settings)
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
