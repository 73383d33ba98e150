"""``facepro config show|check|schema``."""
from __future__ import annotations

import argparse
import json

from edge.cli.common import Subparsers, command_group, get_settings, print_json
from edge.config.json_schema import settings_json_schema


def cmd_config_show(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    print_json(settings.redacted())
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = get_settings(args)
    print(f"settings ok: {settings.source or 'shipped defaults'}")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(settings_json_schema(), indent=2))
    return 0


def register(sub: Subparsers) -> None:
    config_sub = command_group(sub, "config", "inspect settings")
    p = config_sub.add_parser("show", help="print the effective settings (secrets masked)")
    p.set_defaults(func=cmd_config_show)
    p = config_sub.add_parser("check", help="validate the settings and exit")
    p.set_defaults(func=cmd_config_check)
    p = config_sub.add_parser("schema", help="print the settings file's JSON Schema (docs/settings.schema.json)")
    p.set_defaults(func=cmd_config_schema)
