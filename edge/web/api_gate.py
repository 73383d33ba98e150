"""Bearer-token access to the machine API (``/api/v1/``) and to ``/metrics``.

The rules, applied before every such request (``edge.web.security.check_access`` hands
these requests here and applies none of its own):

* ``/api/v1/`` answers only to ``Authorization: Bearer TOKEN``. A browser session (its
  cookie) is ignored there, so no CSRF token is needed and none is asked for; a token in
  the URL is refused. ``/metrics`` also takes a token; without one it keeps the page's rules.
* A read token may use every GET; everything else, and a few GETs marked ``admin`` (the
  backup download), needs an admin token. Views say so with :func:`scope`.
* Failed checks are counted per client address: after ``FAILURE_LIMIT`` in
  ``FAILURE_WINDOW_S`` seconds, every token request from it is refused (429) until the
  window passes, whatever token it sends.
* Tokens are logged by name, never by value: the first use per minute at INFO, every
  request that is not a GET at INFO, other uses at DEBUG.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, jsonify, request

from edge.web import tokens
from edge.web.ratelimit import SlidingWindow

log = logging.getLogger(__name__)

PREFIX = "/api/v1/"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FAILURE_LIMIT = 10
FAILURE_WINDOW_S = 60.0
URL_TOKEN_PARAMS = ("access_token", "token", "api_key", "apikey", "bearer")
EXTENSION = "facepro_api_gate"

F = TypeVar("F", bound=Callable[..., Any])


def scope(required: str | None) -> Callable[[F], F]:
    """Mark a view: ``None`` open to all, ``"read"`` any token, ``"admin"`` an admin token."""
    def mark(view: F) -> F:
        view.api_scope = required  # type: ignore[attr-defined]
        return view
    return mark


class Gate:
    """Per app: where tokens are checked, failures counted and uses recorded."""

    def __init__(self, db_path: Any, failures: SlidingWindow | None = None) -> None:
        self.db_path = db_path
        self.failures = failures or SlidingWindow(FAILURE_LIMIT, FAILURE_WINDOW_S)
        self.usage = tokens.UsageRecorder(db_path)


def install(app: Any, db_path: Any, failures: SlidingWindow | None = None) -> Gate:
    gate = Gate(db_path, failures)
    app.extensions[EXTENSION] = gate
    return gate


def applies(endpoint: str) -> bool:
    """Whether this request is the gate's to decide (the machine API, or /metrics with a token)."""
    if request.path.startswith(PREFIX) or request.path == PREFIX.rstrip("/"):
        return True
    return endpoint == "api.metrics" and "Authorization" in request.headers


def refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="facepro"' + (f', error="{error}"' if error else "")
    return {"WWW-Authenticate": value}


def _required_scope(endpoint: str) -> str | None:
    view = current_app.view_functions.get(endpoint)
    default = "read" if request.method in SAFE_METHODS else "admin"
    return getattr(view, "api_scope", default) if view is not None else default


def current_token() -> tokens.TokenInfo | None:
    """The token this request was let in with (None for an open endpoint without one)."""
    return g.get("api_token")


def check() -> Any:
    """None to let the request through, else the refusal to send."""
    gate: Gate = current_app.extensions[EXTENSION]
    endpoint = request.endpoint or ""
    if any(name in request.args for name in URL_TOKEN_PARAMS):
        # Never use, log or echo it: URLs end up in proxy logs and browser histories.
        log.warning("api: refused a request from %s with a token in the URL (send it as a Bearer header)",
                    request.remote_addr)
        return refusal(400, "token_in_url", "send the token as 'Authorization: Bearer TOKEN', never in the URL")
    required = _required_scope(endpoint)
    header = request.headers.get("Authorization")
    if header is None:
        if required is None:
            return None
        return refusal(401, "token_required", "this API needs 'Authorization: Bearer TOKEN' "
                       "(create one with: facepro web token create NAME)", _challenge())
    client = request.remote_addr or "unknown"
    if gate.failures.blocked(client):
        return refusal(429, "too_many_failures", "too many requests with a wrong token from this address; "
                       "wait and try again", {"Retry-After": str(gate.failures.retry_after(client))})
    scheme, _, presented = header.partition(" ")
    result = tokens.Check(None, "invalid")
    if scheme.lower() == "bearer":
        try:
            result = tokens.check_token(gate.db_path, presented.strip())
        except sqlite3.Error as exc:
            log.error("api: cannot check tokens in %s: %s", gate.db_path, exc)
            return refusal(503, "unavailable", "tokens cannot be checked now (the database does not answer)")
    if result.token is None:
        gate.failures.record(client)
        if result.name is not None:
            log.warning("api: refused %s token %r from %s for %s %s", result.reason, result.name, client,
                        request.method, request.path)
            return refusal(401, f"token_{result.reason}", f"this token is {result.reason}",
                           _challenge("invalid_token"))
        log.warning("api: refused an unknown or malformed token from %s for %s %s", client, request.method,
                    request.path)
        return refusal(401, "invalid_token", "the token is not valid", _challenge("invalid_token"))
    token = result.token
    g.api_token = token
    if required is not None and not token.allows(required):
        log.warning("api: token %r (%s) may not %s %s", token.name, token.scope, request.method, request.path)
        return refusal(403, "insufficient_scope", f"this needs an {required} token; {token.name!r} is a "
                       f"{token.scope} token", _challenge("insufficient_scope"))
    _record_use(gate, token)
    return None


def _record_use(gate: Gate, token: tokens.TokenInfo) -> None:
    try:
        first = gate.usage.used(token)
    except sqlite3.Error as exc:  # a busy database must not refuse a good token
        log.warning("api: could not record the use of token %r: %s", token.name, exc)
        first = False
    level = logging.INFO if first or request.method not in SAFE_METHODS else logging.DEBUG
    log.log(level, "api: token %r (%s) %s %s", token.name, token.scope, request.method, request.path)
