"""What the backup wizard and /api/backups do, over ``ctx.backups`` (the BackupManager).

Flask-free: each action validates its input and raises :class:`ActionError` with an HTTP
status and one line for the technician.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from edge.backup.archive import PARTS, parse_includes
from edge.backup.errors import BackupBusy, BackupError, NewestOwnKept
from edge.context import ServiceContext
from edge.db import web_queries
from edge.secrets import masked
from edge.web.errors import ActionError

log = logging.getLogger(__name__)

INCLUDE_CHOICES = PARTS
INCLUDE_LABELS = {
    "db": "the database (people, face embeddings, events)",  # a restore keeps the device's backup log
    "faces": "the enrolled face images",
    "settings": "the device settings file",
}
# What the backup part writes: a zip, or a zip sealed by edge/backup/crypto.py.
ARCHIVE_SUFFIXES = (".zip", ".zip.enc")
UPLOAD_LABEL = "the uploaded file"  # what an import error calls the upload, whatever its name
# How long a restore request from a page without JavaScript waits for its job.
RESTORE_WAIT_S = 600.0


def _manager(ctx: ServiceContext) -> Any:
    if ctx.backups is None:
        raise ActionError("backups are not available on this device", 503)
    return ctx.backups


def target_names(ctx: ServiceContext) -> list[str]:
    return [t["name"] for t in ctx.settings["backup.targets"]]


def _check_target(ctx: ServiceContext, target: Any, required: bool = False) -> str | None:
    if target in (None, ""):
        if required:
            raise ActionError("target: choose a backup target")
        return None
    if not isinstance(target, str) or target not in target_names(ctx):
        raise ActionError(f"target: {target!r} is not a configured backup target")
    return target


def _check_include(include: Any) -> list[str] | None:
    if include is None:
        return None
    try:
        return parse_includes(include, label="include")
    except BackupError as exc:
        raise ActionError(str(exc)) from None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ActionError(f"name: {name!r} is not a backup archive name")
    return name


def overview(ctx: ServiceContext) -> dict[str, Any]:
    """Backups per configured target (a target that cannot be listed shows its error)."""
    manager = _manager(ctx)
    targets = []
    for target in ctx.settings["backup.targets"]:
        entry: dict[str, Any] = {"name": target["name"], "type": target["type"],
                                 "enabled": target.get("enabled", True), "backups": []}
        try:
            listed = manager.list(target=target["name"])
            entry["backups"] = sorted(listed, key=lambda b: str(b.get("created_at") or ""), reverse=True)
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {masked(str(exc))}"
        targets.append(entry)
    try:
        last = masked(manager.last_status())
    except Exception as exc:
        last = {"error": f"{type(exc).__name__}: {masked(str(exc))}"}
    return {"targets": targets, "last": last, "include_choices": list(INCLUDE_CHOICES)}


def find_backup(ctx: ServiceContext, target: Any, name: Any) -> dict[str, Any]:
    target = _check_target(ctx, target, required=True)
    name = _check_name(name)
    try:
        listed = _manager(ctx).list(target=target)
    except Exception as exc:  # target unreachable (USB unplugged, share down)
        raise ActionError(f"cannot list target {target!r}: {masked(str(exc))}", 503) from exc
    for backup in listed:
        if backup.get("name") == name:
            return dict(backup, include=web_queries.archive_includes(ctx.db_path, name))
    raise ActionError(f"no backup named {name!r} on target {target!r}", 404)


def start_backup(ctx: ServiceContext, target: Any, include: Any) -> str:
    manager = _manager(ctx)
    target = _check_target(ctx, target)
    include = _check_include(include)
    try:
        job_id = manager.start(target=target, include=include)
    except Exception as exc:
        raise ActionError(f"backup could not start: {masked(str(exc))}", 409) from exc
    log.info("backup job %s started from the status page (target %s, include %s)", job_id, target or "default",
             ",".join(include or []) or "default")
    return job_id


def job_state(ctx: ServiceContext, job_id: str) -> dict[str, Any]:
    manager = _manager(ctx)
    try:
        job = manager.job(job_id)
    except Exception:  # the manager raises for an unknown (or forgotten) job id
        job = None
    if not job:
        raise ActionError(f"no backup job {job_id!r}", 404)
    return dict(masked(job), id=job_id)


def what_restore_overwrites(ctx: ServiceContext, backup: dict[str, Any], include: list[str] | None) -> list[str]:
    """Human lines naming what a restore replaces on this device."""
    parts = include or backup.get("include") or list(INCLUDE_CHOICES)
    where = {
        "db": f"{INCLUDE_LABELS['db']}: {ctx.db_path}",
        "faces": f"{INCLUDE_LABELS['faces']}: {ctx.data_dir / 'faces'}",
        "settings": f"{INCLUDE_LABELS['settings']}: {ctx.settings.source or 'the settings file'}",
    }
    return [where[p] for p in INCLUDE_CHOICES if p in parts]


def security_preview(ctx: ServiceContext, backup: dict[str, Any]) -> dict[str, Any]:
    """The security-relevant settings restoring ``backup`` changes: {security_changes, digest,
    secrets_cleared}; the wizard lists them and asks for exactly those to be confirmed."""
    if backup.get("include") and "settings" not in backup["include"]:
        return {"security_changes": [], "secrets_cleared": [], "digest": ""}
    try:
        return dict(_manager(ctx).preview_restore(backup["name"], target=backup.get("target")))
    except Exception as exc:
        raise ActionError(f"cannot read the archive's settings: {exc}", 400) from exc


def start_restore(ctx: ServiceContext, target: Any, name: Any, include: Any = None,
                  accept_security: Any = None) -> str:
    """Start a restore job (progress like a backup job's); returns its id. ``accept_security``
    is the digest of the security-relevant changes the technician confirmed."""
    backup = find_backup(ctx, target, name)
    include = _check_include(include)
    manager = _manager(ctx)
    accepted = accept_security if isinstance(accept_security, str) and accept_security.isalnum() else None
    try:
        job_id = manager.start_restore(backup["name"], include=include, target=backup.get("target") or target,
                                       accept_security=accepted)
    except Exception as exc:
        raise ActionError(f"restore could not start: {masked(str(exc))}", 409) from exc
    log.info("restore job %s of %s from %s started from the status page", job_id, backup["name"],
             backup.get("target"))
    return job_id


def wait_restore(ctx: ServiceContext, job_id: str, timeout: float = RESTORE_WAIT_S) -> dict[str, Any]:
    """The restore job once it has finished (for a page that cannot poll); ActionError if
    it failed. A job still running after ``timeout`` is returned as it is."""
    job = _manager(ctx).wait(job_id, timeout)
    if job["state"] == "failed":
        raise ActionError(f"restore failed: {masked(job['message'])}", 500)
    return dict(masked(job), id=job_id)


def restored_message(job: dict[str, Any]) -> str:
    """'Restored NAME (db, faces).' for a finished restore job."""
    result = job.get("result") if isinstance(job.get("result"), dict) else None
    restored = ", ".join(result.get("restored", [])) if result else ""
    return f"Restored {job.get('archive') or 'the backup'}" + (f" ({restored})" if restored else "") + "."


def delete(ctx: ServiceContext, target: Any, name: Any) -> None:
    backup = find_backup(ctx, target, name)
    log.info("deleting backup %s on %s from the status page", backup["name"], backup.get("target"))
    try:
        # Not forced: the newest backup the device made itself is the one that restores this
        # device; a browser session (or a stolen one) cannot remove it, only the CLI's --force.
        _manager(ctx).delete(backup.get("target") or target, backup["name"])
    except BackupBusy as exc:
        raise ActionError(f"delete refused: {masked(str(exc))}; try again when it has finished", 409) from exc
    except NewestOwnKept as exc:
        raise ActionError(f"{backup['name']} is the newest backup this device made itself on "
                          f"{backup.get('target') or target}: it is kept. Make a newer one first, or run "
                          "`facepro backup delete --force` on the device.", 409) from exc
    except Exception as exc:
        raise ActionError(f"delete failed: {masked(str(exc))}", 500) from exc


def import_upload(ctx: ServiceContext, filename: str, stream: IO[bytes]) -> dict[str, Any]:
    """Save an uploaded archive to a temp file in the data dir, let the manager verify and store it."""
    manager = _manager(ctx)
    base = os.path.basename(filename or "")
    if not base or not base.lower().endswith(ARCHIVE_SUFFIXES):
        raise ActionError(f"file: {base or '(none)'!r} is not a backup archive "
                          f"({' or '.join(ARCHIVE_SUFFIXES)})")
    incoming = ctx.data_dir / "tmp"
    incoming.mkdir(parents=True, exist_ok=True)
    upload_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=incoming))
    tmp = upload_dir / base  # the manager may name the stored copy after the file
    try:
        with open(tmp, "wb") as out:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
        try:
            result = manager.import_archive(tmp)
        except Exception as exc:
            # Not masked: the message describes the upload (its name, its contents), so masking
            # would turn a guessed secret as a file name into "***" and confirm the guess.
            detail = str(exc).replace(str(tmp), UPLOAD_LABEL).replace(base, UPLOAD_LABEL)
            detail = detail.removeprefix(f"{UPLOAD_LABEL}: ")
            raise ActionError(f"{UPLOAD_LABEL}: not imported: {detail}", 400) from exc
    finally:
        tmp.unlink(missing_ok=True)
        upload_dir.rmdir()
    log.info("imported backup %s from an upload", base)
    return result if isinstance(result, dict) else {"result": result}
