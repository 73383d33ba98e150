"""Remote commands taken from ``<base>/<device_id>/command/<action>``.

Every command gets an answer on ``command/result``: ``{action, ok, result}`` or
``{action, ok: false, error}``. A payload is ``PRESS`` (a Home Assistant button) or a JSON
object of at most 4 KiB and 8 levels; an empty payload (how a retained message is cleared)
is never a press; anything else is an error, never a crash.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from edge import secrets
from edge.context import ServiceContext

MAX_PAYLOAD_BYTES = 4096
MAX_DEPTH = 8


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The JSON array/object nesting of ``text``, counted up to ``limit + 1`` (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


class CommandError(Exception):
    """A command that cannot run; the message goes back on ``command/result``."""


def parse_payload(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"payload of {len(raw)} bytes refused (at most {MAX_PAYLOAD_BYTES})")
    text = raw.decode("utf-8", errors="strict").strip() if raw else ""
    if not text:
        raise CommandError("empty payload is not a command (send {} or PRESS)")
    if text == "PRESS":
        return {}
    if nesting_depth(text) > MAX_DEPTH:
        raise CommandError(f"payload nested deeper than {MAX_DEPTH} levels refused")
    try:
        value = json.loads(text)
    except RecursionError:
        raise CommandError(f"payload nested deeper than {MAX_DEPTH} levels refused") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"payload is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise CommandError("payload must be a JSON object (or empty)")
    return value


def _backup(ctx: ServiceContext, args: dict[str, Any]) -> dict[str, Any]:
    backups = ctx.backups
    if backups is None:
        raise CommandError("unsupported: this device runs no backup manager")
    unknown = sorted(set(args) - {"target", "include"})
    if unknown:
        raise CommandError(f"unknown argument(s): {', '.join(unknown)} (allowed: target, include)")
    target = args.get("target")
    include = args.get("include")
    if target is not None and not isinstance(target, str):
        raise CommandError("argument target must be a string (a backup target name)")
    if include is not None and not (isinstance(include, list) and all(isinstance(i, str) for i in include)):
        raise CommandError("argument include must be a list of strings")
    try:
        job = backups.start(target=target, include=include)
    except Exception as exc:
        raise CommandError(f"backup could not start: {exc}") from None
    return {"job": job}


def _enroll_reload(ctx: ServiceContext, args: dict[str, Any]) -> dict[str, Any]:
    """Announce the enrolment change; the pipeline reloads its gallery on its inference thread."""
    if args:
        raise CommandError(f"enroll_reload takes no arguments, got: {', '.join(sorted(args))}")
    ctx.bus.publish("enroll", {})
    pipeline = ctx.pipeline
    if pipeline is None:
        return {"reloaded": False, "detail": "no pipeline running; enrolment change announced"}
    try:
        pipeline.reload_gallery()  # a request: with the bus message above, still one reload
    except Exception as exc:
        raise CommandError(f"gallery reload failed: {exc}") from None
    return {"reloaded": True}


ACTIONS: dict[str, Callable[[ServiceContext, dict[str, Any]], dict[str, Any]]] = {
    "backup": _backup,
    "enroll_reload": _enroll_reload,
}


def known_action(action: str) -> str | None:
    """``action`` when it is one of ours, else None: an answer never repeats a name a client
    made up (answers are masked for secrets, so an echo would confirm a guessed password)."""
    return action if action in ACTIONS else None


def given_strings(value: Any, depth: int = 0) -> list[str]:
    """Every string in a parsed payload (keys and values), to be kept out of the answer."""
    if isinstance(value, str):
        return [value]
    if depth > MAX_DEPTH:
        return []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*given_strings(k, depth + 1), *given_strings(v, depth + 1))]
    if isinstance(value, list):
        return [s for item in value for s in given_strings(item, depth + 1)]
    return []


def without_given(text: str, given: list[str]) -> str:
    """``text`` with what the client sent replaced. Only strings of 3 characters or more can
    be masked as secrets (:func:`edge.secrets.register`), so shorter ones may stay."""
    for value in sorted({g for g in given if len(g) >= 3}, key=len, reverse=True):
        text = text.replace(repr(value), "(the given value)").replace(value, "(the given value)")
    return text


def run_command(ctx: ServiceContext, action: str, raw: bytes) -> dict[str, Any]:
    """Run one command; always returns the ``command/result`` payload."""
    given: list[str] = [action]
    try:
        handler = ACTIONS.get(action)
        if handler is None:
            raise CommandError(f"unknown action (known: {', '.join(sorted(ACTIONS))})")
        try:
            args = parse_payload(raw)
        except UnicodeDecodeError:
            raise CommandError("payload is not UTF-8 text") from None
        given += given_strings(args)
        return {"action": action, "ok": True, "result": handler(ctx, args)}
    except CommandError as exc:
        return {"action": known_action(action), "ok": False,
                "error": secrets.redact(without_given(str(exc), given))}
