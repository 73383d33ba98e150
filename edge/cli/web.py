"""``facepro web ...``: the technician password for the status page."""
from __future__ import annotations

import argparse
import getpass
import sys

from edge.cli.common import Subparsers, command_group, get_settings
from edge.errors import BadInput, FaceproError
from edge.web import auth


def _read_password(args: argparse.Namespace) -> str:
    if args.stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise BadInput("web set-password: no password on stdin")
        return line.rstrip("\r\n")
    first = getpass.getpass("New technician password: ")
    second = getpass.getpass("Repeat it: ")
    if first != second:
        raise BadInput("web set-password: the two passwords differ")
    return first


def cmd_set_password(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    password = _read_password(args)
    try:
        auth.set_password(settings.data_dir, password)
    except auth.PasswordError as exc:
        raise BadInput(f"web set-password: {exc}") from exc
    except OSError as exc:
        raise FaceproError(f"web set-password: cannot write {auth.password_file(settings.data_dir)}: "
                           f"{exc.strerror or exc}") from exc
    print(f"technician password set ({auth.password_file(settings.data_dir)}); "
          "sessions logged in with the old one are signed out")
    return 0


def register(subparsers: Subparsers) -> None:
    sub = command_group(subparsers, "web", "status page administration")
    p = sub.add_parser("set-password", help="set the technician password (read from stdin, or prompted twice)")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_set_password)
