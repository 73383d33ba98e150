"""``facepro run``: the service until it is stopped."""
from __future__ import annotations

import argparse

from edge.cli.common import Subparsers, get_settings
from edge.service import Service


def cmd_run(args: argparse.Namespace) -> int:
    return Service(get_settings(args)).run()


def register(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="run the service: migrate, then cameras, MQTT, web until stopped")
    p.set_defaults(func=cmd_run)
