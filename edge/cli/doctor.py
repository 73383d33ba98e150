"""``facepro doctor [--json] [--timeout S]``: is this device ready? Exit 1 on any FAIL."""
from __future__ import annotations

import argparse
import logging

from edge import doctor
from edge.cli.common import Subparsers, print_json


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.log_level == "info":
        # The table is the report; the parts' start-up info lines would only bury it.
        logging.getLogger().setLevel(logging.WARNING)
    checks = doctor.run_checks(args.config, timeout_s=args.timeout)
    counts = doctor.summary(checks)
    if args.json:
        print_json({"ok": counts[doctor.FAIL] == 0, "summary": counts,
                    "checks": [check.as_dict() for check in checks]})
    else:
        print(doctor.format_table(checks))
    return 1 if counts[doctor.FAIL] else 0


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check settings, database, models, cameras, MQTT, backups, disk, clock")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds each camera/broker probe may take (default 10)")
    p.set_defaults(func=cmd_doctor)
