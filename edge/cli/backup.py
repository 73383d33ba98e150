"""``facepro backup ...`` and ``facepro export ...``."""
from __future__ import annotations

import argparse
import json
import stat
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from edge.cli.common import (
    Subparsers,
    command_group,
    end_progress,
    get_settings,
    human_size,
    print_json,
    progress_printer,
    write_output,
)
from edge.db import faces as faces_store
from edge.db.connection import connect
from edge.device_id import resolve_device_id
from edge.errors import BadInput, FaceproError

if TYPE_CHECKING:
    from edge.backup.manager import BackupManager


def _manager(args: argparse.Namespace) -> BackupManager:
    from edge.backup.manager import BackupManager  # loads the archive and crypto code: only when needed

    settings = get_settings(args)
    device_id = resolve_device_id(settings["device.id"], settings.data_dir)
    return BackupManager(settings, device_id)


def cmd_create(args: argparse.Namespace) -> int:
    manager = _manager(args)
    result = manager.create(target=args.target, include=args.include, progress=progress_printer(not args.json))
    end_progress(not args.json)
    if args.json:
        print_json(result)
    else:
        for entry in result["targets"]:
            if entry["ok"]:
                print(f"ok: {result['name']} ({human_size(result['size'])}) written to {entry['target']} and verified")
            else:
                print(f"FAILED: {entry['target']}: {entry['error']}")
    if not result["ok"]:
        raise FaceproError("backup failed on " + ", ".join(e["target"] for e in result["targets"] if not e["ok"]))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    items = _manager(args).list(target=args.target)
    if args.json:
        print_json(items)
        return 0
    if not items:
        print("no backups")
    for item in items:
        if item.get("error"):
            print(f"{item['target']:<12} UNAVAILABLE: {item['error']}")
        else:
            flag = " encrypted" if item["encrypted"] else ""
            print(f"{item['target']:<12} {item['name']}  {human_size(item['size']):>10}  {item['created_at']}{flag}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    result = _manager(args).verify(args.archive, target=args.target, key_file=args.key_file)
    if args.json:
        print_json(result)
    else:
        m = result["manifest"]
        print(f"ok: {result['archive']}: {result['members']} member(s) match their checksums; "
              f"created {m.get('created_at')} on {m.get('device_id')}, schema {m.get('schema_version')}, "
              f"includes {', '.join(m.get('includes', []))}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    manager = _manager(args)
    if not args.yes:
        if not sys.stdin.isatty():
            raise BadInput("restore replaces the current data (a pre-restore backup is taken first); "
                           "pass --yes to confirm")
        answer = input(f"Restore {args.archive} over the data in {manager.data_dir}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise FaceproError("restore cancelled")
    result = manager.restore(args.archive, include=args.include, target=args.target, key_file=args.key_file,
                             progress=progress_printer(not args.json),
                             accept_security="all" if args.accept_security_changes else None)
    end_progress(not args.json)
    if args.json:
        print_json(result)
    else:
        print(f"ok: restored {', '.join(result['restored'])} from {result['archive']} "
              f"(backup of {result['backup_created_at']}); previous state saved in "
              f"{result.get('pre_restore_backup') or '(nothing to save)'}")
        if result.get("migrated"):
            print(f"database migrated forward: {', '.join(f'{v:03d}' for v in result['migrated'])}")
        for line in result.get("security_changes") or []:
            print(f"security-relevant change accepted: {line}")
        for key in result.get("secrets_cleared") or []:
            print(f"{key}: left empty (the restored settings point it at another host, port or user); set it again")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    removed = _manager(args).prune(target=args.target, keep=args.keep)
    for target, names in removed.items():
        print(f"{target}: removed {len(names)} archive(s)" + "".join(f"\n  {n}" for n in names))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _manager(args).delete(args.target, args.archive, force=args.force)
    print(f"ok: deleted {args.archive} from {args.target}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    manager = _manager(args)
    status = manager.last_status()
    status["recent"] = manager.store.recent(10)
    if args.json:
        print_json(status)
        return 0
    print(f"schedule:      {status['schedule'] or 'off'} (next due {status['next_due_at'] or '-'})")
    print(f"last success:  {status['last_success_at'] or 'never'}")
    print(f"last attempt:  {status['last_attempt_at'] or 'never'} {status['last_result'] or ''}")
    if status["last_error"]:
        print(f"last error:    {status['last_error']}")
    for missing in status["targets_missing"]:
        print(f"MISSING:       {missing['detail']}")
    if status["overdue"]:
        print("OVERDUE")
    return 0


def _people_for_export(db_path: Path) -> list[dict[str, Any]]:
    """Who the exported images belong to (paths inside the ZIP); [] without a database."""
    if not db_path.exists():
        return []
    conn = connect(db_path, readonly=True)
    try:
        people = faces_store.list_people(conn, order="id")
    finally:
        conn.close()
    return [{"id": p["id"], "name": p["name"], "images": ["faces/" + path for path in p["images"] if path]}
            for p in people]


def cmd_export_faces(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    faces = settings.data_dir / "faces"
    people = _people_for_export(settings.db_path)
    count = 0

    def write(fh: BinaryIO) -> None:
        nonlocal count
        with zipfile.ZipFile(fh, "w") as zf:
            if faces.is_dir():
                for path in sorted(faces.rglob("*")):
                    if path.is_file() and not path.is_symlink():
                        zf.write(path, "faces/" + path.relative_to(faces).as_posix(), compress_type=zipfile.ZIP_STORED)
                        count += 1
            info = zipfile.ZipInfo("people.json")
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, json.dumps(people, indent=2), compress_type=zipfile.ZIP_DEFLATED)

    write_output(Path(args.out), write)
    print(f"ok: {count} face image(s) of {len(people)} person(s) exported to {args.out}")
    return 0


def cmd_export_settings(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    data = json.dumps(settings.redacted(), indent=2).encode() + b"\n"
    write_output(Path(args.out), lambda fh: fh.write(data))
    print(f"ok: effective settings (secrets masked) exported to {args.out}")
    return 0


def _include(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in parts if p not in ("db", "faces", "settings")]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"{value!r}: use a comma-separated list of db, faces, settings")
    return parts


def register(subparsers: Subparsers) -> None:
    sub = command_group(subparsers, "backup", "create, list, verify, restore, prune and delete backups")

    p = sub.add_parser("create", help="write a backup to every enabled target (or --target)")
    p.add_argument("--target", metavar="NAME", help="only this target from backup.targets")
    p.add_argument("--include", type=_include, metavar="PARTS", help="db,faces,settings (default: backup.include)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("list", help="archives on the targets")
    p.add_argument("--target", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("verify", help="check an archive completely (decryption, manifest, checksums)")
    p.add_argument("archive", metavar="ARCHIVE", help="a path, or a name on --target")
    p.add_argument("--target", metavar="NAME", help="ARCHIVE is a name on this target")
    p.add_argument("--key-file", metavar="PATH", help="key file to decrypt with (default: backup.encrypt)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("restore", help="verify, back up the current state, then restore an archive")
    p.add_argument("archive", metavar="ARCHIVE", help="a path, or a name on --target")
    p.add_argument("--target", metavar="NAME", help="ARCHIVE is a name on this target")
    p.add_argument("--include", type=_include, metavar="PARTS", help="db,faces,settings (default: all in the archive)")
    p.add_argument("--key-file", metavar="PATH", help="key file to decrypt with (default: backup.encrypt)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--accept-security-changes", action="store_true",
                   help="restore settings that change public read, cookies, MQTT/SMB endpoints, TLS, "
                        "camera hosts or encryption (without it such a restore lists them and is refused)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("prune", help="apply retention (never removes the last good backup)")
    p.add_argument("--target", metavar="NAME")
    p.add_argument("--keep", type=int, metavar="N", help="keep the N newest (default: target keep / backup.keep)")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("delete", help="delete one archive from a target (imported ones too, which "
                                      "retention never removes)")
    p.add_argument("target", metavar="TARGET", help="a target name from backup.targets")
    p.add_argument("archive", metavar="ARCHIVE", help="an archive name on TARGET (see backup list)")
    p.add_argument("--force", action="store_true",
                   help="also delete the newest backup this device made itself on TARGET")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("status", help="last backup, schedule, missing targets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    esub = command_group(subparsers, "export", "export enrolled faces or settings", metavar="WHAT")
    p = esub.add_parser("faces", help="enrolled face images and who they belong to, as a ZIP")
    p.add_argument("out", metavar="OUT.zip")
    p.set_defaults(func=cmd_export_faces)
    p = esub.add_parser("settings", help="the effective settings as JSON (secrets masked)")
    p.add_argument("out", metavar="OUT.json")
    p.set_defaults(func=cmd_export_settings)
