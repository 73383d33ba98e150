"""``facepro web ...``: the technician password for the status page."""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from edge.cli import CliError, command_group, get_settings
from edge.web import auth


def _read_password(args: argparse.Namespace) -> str:
    if args.stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise CliError("web set-password: no password on stdin", 2)
        return line.rstrip("\r\n")
    first = getpass.getpass("New technician password: ")
    second = getpass.getpass("Repeat it: ")
    if first != second:
        raise CliError("web set-password: the two passwords differ", 2)
    return first


def cmd_set_password(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    password = _read_password(args)
    try:
        auth.set_password(settings.data_dir, password)
    except auth.PasswordError as exc:
        raise CliError(f"web set-password: {exc}", 2) from exc
    except OSError as exc:
        raise CliError(f"web set-password: cannot write {auth.password_file(settings.data_dir)}: "
                       f"{exc.strerror or exc}", 1) from exc
    print(f"technician password set ({auth.password_file(settings.data_dir)}); "
          "sessions logged in with the old one are signed out")
    return 0


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "web", "status page administration")
    p = sub.add_parser("set-password", help="set the technician password (read from stdin, or prompted twice)")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_set_password)
