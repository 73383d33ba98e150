"""``facepro migrate status|up|down|verify``."""
from __future__ import annotations

import argparse

from edge.cli.common import Subparsers, command_group, get_settings, print_json
from edge.db.migrate import open_migrator


def cmd_migrate_status(args: argparse.Namespace) -> int:
    with open_migrator(get_settings(args)) as migrator:
        status = migrator.status()
    if args.json:
        print_json(status)
        return 1 if status["problems"] else 0
    print(f"database:        {status['database']}")
    print(f"current version: {status['current_version']:03d} (latest {status['latest_version']:03d})")
    print("applied:")
    for row in status["applied"]:
        print(f"  {row['version']:03d}  {row['name']:<36} {row['applied_at']}")
    if not status["applied"]:
        print("  (none)")
    print("pending:")
    for row in status["pending"]:
        print(f"  {row['version']:03d}  {row['name']}")
    if not status["pending"]:
        print("  (none)")
    for problem in status["problems"]:
        print(f"PROBLEM: {problem}")
    return 1 if status["problems"] else 0


def cmd_migrate_up(args: argparse.Namespace) -> int:
    with open_migrator(get_settings(args)) as migrator:
        applied = migrator.migrate(to=args.to)
        version = migrator.current_version()
    print(f"applied {len(applied)} migration(s); schema version {version:03d}")
    return 0


def cmd_migrate_down(args: argparse.Namespace) -> int:
    with open_migrator(get_settings(args)) as migrator:
        undone = migrator.rollback(to=args.to)
        version = migrator.current_version()
    print(f"rolled back {len(undone)} migration(s); schema version {version:03d}")
    return 0


def cmd_migrate_verify(args: argparse.Namespace) -> int:
    with open_migrator(get_settings(args)) as migrator:
        problems = migrator.problems()
        count = len(migrator.applied())
    if problems:
        for problem in problems:
            print(f"FAIL: {problem}")
        return 1
    print(f"ok: {count} applied migration(s) match their files")
    return 0


def register(sub: Subparsers) -> None:
    msub = command_group(sub, "migrate", "database schema migrations")
    p = msub.add_parser("status", help="current version, applied and pending migrations")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_migrate_status)
    p = msub.add_parser("up", help="apply pending migrations")
    p.add_argument("--to", type=int, metavar="N", help="stop at version N (default: latest)")
    p.set_defaults(func=cmd_migrate_up)
    p = msub.add_parser("down", help="roll back to version N")
    p.add_argument("--to", type=int, metavar="N", required=True, help="target version (0 = empty)")
    p.set_defaults(func=cmd_migrate_down)
    p = msub.add_parser("verify", help="check applied migrations against the files on disk")
    p.set_defaults(func=cmd_migrate_verify)
