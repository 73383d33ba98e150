"""Settings to target objects: ``backup.targets`` entries as this device uses them, the
target object for each, and the ``facepro doctor`` probe of one target."""
from __future__ import annotations

from typing import Any

from edge.backup.errors import BackupError
from edge.backup.smb import SmbTarget
from edge.backup.targets import LocalTarget, MountTarget, Target, TargetError
from edge.config import Settings

DEVICE_PLACEHOLDER = "{device_id}"


def for_device(spec: dict[str, Any], device_id: str | None) -> dict[str, Any]:
    """The target as this device uses it: ``{device_id}`` in ``subdir`` becomes the device id,
    so one settings file (one image) gives every device its own folder on a shared target."""
    subdir = spec.get("subdir")
    if not subdir or DEVICE_PLACEHOLDER not in subdir:
        return spec
    if not device_id:
        raise TargetError(f"backup target {spec.get('name')!r}: subdir {subdir!r} needs the device id, "
                          "which is not known yet (it is created on the first start of facepro run)")
    return {**spec, "subdir": subdir.replace(DEVICE_PLACEHOLDER, device_id)}


def make_target(spec: dict[str, Any]) -> Target:
    kind = spec.get("type")
    if kind == "local":
        return LocalTarget(spec)
    if kind in ("usb", "mounted"):
        return MountTarget(spec)
    if kind == "smb":
        return SmbTarget(spec)
    raise TargetError(f"backup target {spec.get('name')!r}: unknown type {kind!r}")


def check_target(target: dict[str, Any], min_free_bytes: int = 100 << 20,
                 device_id: str | None = None) -> dict[str, Any]:
    """For ``facepro doctor``: {ok, free_bytes, detail}. Never raises for a failed check."""
    try:
        spec = dict(for_device(target, device_id))
        if spec.get("type") == "smb":
            spec["timeout_s"] = min(float(spec.get("timeout_s") or 30), 10.0)
        t = make_target(spec)
        t.check()
        free = t.free_bytes()
        if free < min_free_bytes:
            return {"ok": False, "free_bytes": free,
                    "detail": f"{t.describe()}: only {free // (1 << 20)} MiB free (want {min_free_bytes // (1 << 20)} MiB)"}
        count = len(t.backups())
        t.close()
        return {"ok": True, "free_bytes": free, "detail": f"{t.describe()}: ok, {count} backup(s), "
                                                             f"{free // (1 << 20)} MiB free"}
    except TargetError as exc:
        return {"ok": False, "free_bytes": None, "detail": str(exc)}
    except Exception as exc:  # a probe never raises
        return {"ok": False, "free_bytes": None, "detail": f"backup target {target.get('name')!r}: {exc}"}


class TargetSpecs:
    """The configured targets of one device (``backup.targets``, read on every call so a
    changed settings object is seen)."""

    def __init__(self, settings: Settings, device_id: str) -> None:
        self.settings = settings
        self.device_id = device_id

    def all(self) -> list[dict[str, Any]]:
        return [for_device(spec, self.device_id) for spec in self.settings.get("backup.targets") or []]

    def enabled(self) -> list[dict[str, Any]]:
        return [s for s in self.all() if s.get("enabled", True)]

    def named(self, name: str) -> dict[str, Any]:
        specs = self.all()
        for spec in specs:
            if spec["name"] == name:
                return spec
        known = ", ".join(s["name"] for s in specs) or "none configured"
        raise BackupError(f"no backup target named {name!r} (backup.targets: {known})", exit_code=2)

    def targets(self, name: str | None) -> list[Target]:
        """The named target, or every enabled one (at least one must be configured)."""
        if name is not None:
            return [make_target(self.named(name))]
        specs = self.enabled()
        if not specs:
            raise BackupError("no backup targets configured (add one to backup.targets)", exit_code=2)
        return [make_target(s) for s in specs]
