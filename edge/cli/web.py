"""``facepro web ...``: the technician password and the sessions of the status page."""
from __future__ import annotations

import argparse
import getpass
import sys
import time

from edge.cli.common import Subparsers, command_group, get_settings
from edge.db.web_sessions import SessionStore, sessions_file
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


def _store(args: argparse.Namespace) -> SessionStore:
    settings = get_settings(args)
    return SessionStore(sessions_file(settings.data_dir), max_age_s=settings["web.session_max_age_s"],
                        idle_s=settings["web.session_idle_s"])


def cmd_set_password(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    password = _read_password(args)
    context = tuple(str(v) for v in (settings["device.name"], settings["device.id"]) if v)
    try:
        auth.set_password(settings.data_dir, password, context)
    except auth.PasswordError as exc:
        raise BadInput(f"web set-password: {exc}") from exc
    except OSError as exc:
        raise FaceproError(f"web set-password: cannot write {auth.password_file(settings.data_dir)}: "
                           f"{exc.strerror or exc}") from exc
    ended = _store(args).revoke_all()
    print(f"technician password set ({auth.password_file(settings.data_dir)}); "
          f"{ended} session(s) logged in with the old one ended")
    return 0


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def cmd_sessions(args: argparse.Namespace) -> int:
    rows = _store(args).live()
    if not rows:
        print("no live session")
        return 0
    print(f"{'id':>5}  {'created':20}  {'last seen':20}  {'expires':20}  client  browser")
    for row in rows:
        print(f"{row.id:>5}  {_when(row.created_at):20}  {_when(row.last_seen_at):20}  {_when(row.expires_at):20}  "
              f"{row.client or '?'}  {(row.user_agent or '?')[:60]}")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.id is not None:
        if not store.revoke(args.id):
            raise BadInput(f"web logout: no live session with id {args.id} (see 'facepro web sessions')")
        print(f"session {args.id} ended")
        return 0
    print(f"{store.revoke_all()} session(s) ended")
    return 0


def register(subparsers: Subparsers) -> None:
    sub = command_group(subparsers, "web", "status page administration")
    p = sub.add_parser("set-password", help="set the technician password (read from stdin, or prompted twice); "
                       "ends every session")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_set_password)
    p = sub.add_parser("sessions", help="list the live technician sessions (never their secrets)")
    p.set_defaults(func=cmd_sessions)
    p = sub.add_parser("logout-all", help="end every technician session now")
    p.set_defaults(func=cmd_logout, id=None)
    p = sub.add_parser("logout", help="end one technician session (an id from 'facepro web sessions')")
    p.add_argument("id", type=int, help="the session id")
    p.set_defaults(func=cmd_logout)
