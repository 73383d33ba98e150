"""``facepro config show|check``."""
from __future__ import annotations

import argparse

from edge.cli.common import Subparsers, command_group, get_settings, print_json


def cmd_config_show(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    print_json(settings.redacted())
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    print(f"settings ok: {settings.source or 'shipped defaults'}")
    return 0


def register(sub: Subparsers) -> None:
    config_sub = command_group(sub, "config", "inspect settings")
    p = config_sub.add_parser("show", help="print the effective settings (secrets masked)")
    p.set_defaults(func=cmd_config_show)
    p = config_sub.add_parser("check", help="validate the settings and exit")
    p.set_defaults(func=cmd_config_check)
