"""What every command module shares: the parser class, command groups, settings, output."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from edge.config import Settings, load_settings
from edge.errors import BadInput
from edge.files import write_atomic

Subparsers = Any  # argparse's _SubParsersAction, which it does not export
Progress = Callable[[float, str], None]


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # argparse's default exits 2 with usage; keep it one line
        self.exit(2, f"facepro: error: {message} (see: {self.prog} --help)\n")


def command_group(subparsers: Subparsers, name: str, help: str, metavar: str = "ACTION") -> Subparsers:
    """``facepro NAME ACTION ...``: a command whose own sub-commands are required; returns
    the sub-parsers to add the actions to."""
    group = subparsers.add_parser(name, help=help)
    actions = group.add_subparsers(dest=f"{name}_command", metavar=metavar, parser_class=type(group))
    actions.required = True
    return actions


def get_settings(args: argparse.Namespace) -> Settings:
    """Settings for a command, loaded once per invocation."""
    if getattr(args, "_settings", None) is None:
        args._settings = load_settings(args.config)
    settings: Settings = args._settings
    return settings


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


def progress_printer(enabled: bool) -> Progress | None:
    """A progress callback drawing one line on a terminal's stderr; None when not wanted."""
    if not enabled or not sys.stderr.isatty():
        return None
    state = {"last": ""}

    def show(fraction: float, message: str) -> None:
        line = f"\r{fraction * 100:5.1f}% {message[:60]:<60}"
        if line != state["last"]:
            sys.stderr.write(line)
            sys.stderr.flush()
            state["last"] = line

    return show


def end_progress(enabled: bool) -> None:
    """Finish the line :func:`progress_printer` drew."""
    if enabled and sys.stderr.isatty():
        sys.stderr.write("\n")


def write_output(path: Path, writer: Callable[[BinaryIO], object]) -> None:
    """Write a file a person named on the command line, atomically."""
    path = path.absolute()
    if path.is_dir():
        raise BadInput(f"{path}: is a directory")
    if not path.parent.is_dir():
        raise BadInput(f"{path.parent}: directory does not exist")
    write_atomic(path, writer)
