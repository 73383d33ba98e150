"""``facepro``: a thin command line over the library API.

Exit codes: 0 ok, 1 operation failed, 2 bad input (settings, arguments, files). Library
errors carry their code (:class:`edge.errors.FaceproError`); :func:`main` maps them, and
the few other failures a person can cause, in one place. Each command group is a module
of this package with a ``register(subparsers)``.
"""
from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections.abc import Sequence

from edge.cli import backup, config, doctor, enroll, events, migrate, run, version, web
from edge.cli.common import ArgumentParser
from edge.errors import FaceproError
from edge.logs import LEVELS, setup_logging

__all__ = ["build_parser", "main"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="facepro", description="FacePro Edge face-recognition service")
    parser.add_argument("--config", metavar="PATH", help="device settings file (default: $FACEPRO_CONFIG)")
    parser.add_argument("--log-level", default="info", choices=LEVELS, help="log verbosity (default: info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    # The order of `facepro --help`.
    for module in (version, run, config, migrate, backup, doctor, enroll, events, web):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except FaceproError as exc:
        print(f"facepro: error: {exc}", file=sys.stderr)
        return exc.exit_code
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
