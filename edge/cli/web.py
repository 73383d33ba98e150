"""``facepro web ...``: the technician password, the sessions of the status page and the
machine API's tokens."""
from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from edge.cli.common import Subparsers, command_group, get_settings, print_json
from edge.db.migrate import migrate_database
from edge.db.web_sessions import SessionStore, sessions_file
from edge.errors import BadInput, FaceproError
from edge.web import auth, tokens


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


def _token_db(args: argparse.Namespace) -> tuple[Path, int]:
    settings = get_settings(args)
    migrate_database(settings)  # the api_tokens table must exist
    return settings.db_path, settings["database.busy_timeout_ms"]


def cmd_token_create(args: argparse.Namespace) -> int:
    given = None
    if args.stdin:
        given = sys.stdin.readline().strip()
        if not given:
            raise BadInput("web token create --stdin: no token on stdin")
    db_path, busy = _token_db(args)
    token, entry = tokens.create(db_path, args.name, args.scope, args.expires, busy_timeout_ms=busy, token=given)
    # The token alone on stdout (`... > token-file` keeps it out of the terminal's scrollback);
    # what it is, on stderr. A token read from stdin is known already and not printed again.
    if args.json:
        print_json(entry if given else dict(entry, token=token))
    elif not given:
        print(token)
    once = "" if given else "; it is shown only this once"
    print(f"created {entry['scope']} token {entry['name']!r} (expires {entry['expires_at'] or 'never'}){once}: "
          "send it as 'Authorization: Bearer TOKEN'", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    db_path, busy = _token_db(args)
    listed = tokens.list_tokens(db_path, busy_timeout_ms=busy)
    if args.json:
        print_json(listed)
        return 0
    if not listed:
        print("no API tokens (create one: facepro web token create NAME)")
        return 0
    width = max(4, *(len(t["name"]) for t in listed))
    print(f"{'NAME':<{width}}  SCOPE  STATE    CREATED (UTC)         EXPIRES (UTC)         LAST USED (UTC)")
    for t in listed:
        print(f"{t['name']:<{width}}  {t['scope']:<5}  {t['state']:<7}  {t['created_at'] or '-':<20}  "
              f"{t['expires_at'] or 'never':<20}  {t['last_used_at'] or '-'}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    db_path, busy = _token_db(args)
    tokens.revoke(db_path, args.name, busy_timeout_ms=busy)
    print(f"revoked token {args.name!r}; requests with it are refused from now on")
    return 0


def _days(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None


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

    tsub = command_group(sub, "token", "tokens for the machine API (/api/v1/) and /metrics")
    p = tsub.add_parser("create", help="create a token and print it once (only its hash is kept)")
    p.add_argument("name", metavar="NAME", help="what the token is for (logged when it is used)")
    p.add_argument("--scope", choices=tokens.SCOPES, default="read",
                   help="read: query only; admin: also enrol, remove, back up, download backups (default: read)")
    p.add_argument("--expires", type=_days, metavar="DAYS", help="valid for DAYS days (default: until revoked)")
    p.add_argument("--stdin", action="store_true",
                   help="take the token from stdin instead of making one (give a fleet one Prometheus token)")
    p.add_argument("--json", action="store_true", help="machine-readable output (the token included)")
    p.set_defaults(func=cmd_token_create)
    p = tsub.add_parser("list", help="list tokens (names, scopes, states; never the tokens)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_token_list)
    p = tsub.add_parser("revoke", help="revoke a token at once")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_token_revoke)
