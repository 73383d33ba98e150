"""``facepro version``."""
from __future__ import annotations

import argparse

import edge
from edge.cli.common import Subparsers


def cmd_version(args: argparse.Namespace) -> int:
    print(f"facepro {edge.__version__}")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)
