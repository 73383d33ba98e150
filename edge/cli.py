"""``facepro``: a thin command line over the library API.

Exit codes: 0 ok, 1 operation failed, 2 bad input (settings, arguments, files).
Each domain registers its own subcommands from ``edge/<domain>/commands.py`` (see
:data:`COMMAND_MODULES`); this module holds the global options and the foundation's
commands (run, migrate, config, version).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sqlite3
import sys
from typing import Any, Callable, Sequence

import edge
from edge.config import ConfigError, Settings, load_settings
from edge.db.migrator import MigrationError
from edge.logs import LEVELS, setup_logging
from edge.service import open_migrator

log = logging.getLogger(__name__)

# Modules exposing register(subparsers) for their own subcommands.
COMMAND_MODULES: tuple[str, ...] = (
    "edge.backup.commands",
    "edge.doctor_commands",
    "edge.pipeline.commands",
    "edge.pipeline.flow_commands",
    "edge.web.commands",
)


class CliError(Exception):
    """A failure to report as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default exits 2 with usage; keep it one line
        self.exit(2, f"facepro: error: {message} (see: {self.prog} --help)\n")


def command_group(subparsers: Any, name: str, help: str, metavar: str = "ACTION") -> Any:
    """``facepro NAME ACTION ...``: a command whose own sub-commands are required; returns
    the sub-parsers to add the actions to."""
    group = subparsers.add_parser(name, help=help)
    actions = group.add_subparsers(dest=f"{name}_command", metavar=metavar, parser_class=type(group))
    actions.required = True
    return actions


def get_settings(args: argparse.Namespace) -> Settings:
    """Settings for a command, loaded once per invocation."""
    if getattr(args, "_settings", None) is None:
        args._settings = load_settings(args.config)
    return args._settings


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


# -- version / config ----------------------------------------------------------------

def cmd_version(args: argparse.Namespace) -> int:
    print(f"facepro {edge.__version__}")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    print_json(settings.redacted())
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    print(f"settings ok: {settings.source or 'shipped defaults'}")
    return 0


# -- migrate ---------------------------------------------------------------------------

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


# -- run -------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from edge.service import Service

    return Service(get_settings(args)).run()


# -- parser ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="facepro", description="FacePro Edge face-recognition service")
    parser.add_argument("--config", metavar="PATH", help="device settings file (default: $FACEPRO_CONFIG)")
    parser.add_argument("--log-level", default="info", choices=LEVELS, help="log verbosity (default: info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser("run", help="run the service: migrate, then cameras, MQTT, web until stopped")
    p.set_defaults(func=cmd_run)

    config_sub = command_group(sub, "config", "inspect settings")
    p = config_sub.add_parser("show", help="print the effective settings (secrets masked)")
    p.set_defaults(func=cmd_config_show)
    p = config_sub.add_parser("check", help="validate the settings and exit")
    p.set_defaults(func=cmd_config_check)

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

    for module_name in COMMAND_MODULES:
        register: Callable[[Any], None] = importlib.import_module(module_name).register
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"facepro: error: {exc}", file=sys.stderr)
        return 2
    except MigrationError as exc:
        log.error("migration failed: %s", exc)
        print(f"facepro: error: {exc}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"facepro: error: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:  # an unwritable data dir, a full disk, a missing device...
        log.debug("command failed", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"facepro: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # e.g. a file that is not a database
        log.debug("command failed", exc_info=True)
        settings = getattr(args, "_settings", None)
        where = f"database {settings.db_path}: " if settings is not None else "database: "
        print(f"facepro: error: {where}{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
