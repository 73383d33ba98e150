"""Login state, CSRF tokens and the access rules applied before every request."""
from __future__ import annotations

import hmac
import secrets as pysecrets
from typing import Any

from flask import Flask, current_app, g, jsonify, redirect, request, session, url_for

from edge import secrets
from edge.web import api_gate, auth

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Reachable without login even when reading is not public.
OPEN_ENDPOINTS = {"auth.login", "api.health", "static"}
REDACTED_TYPES = {"text/html", "application/json", "text/plain"}


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not token:
        token = pysecrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok() -> bool:
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    return bool(expected and sent) and hmac.compare_digest(str(sent), str(expected))


def logged_in() -> bool:
    """True when this session logged in with the current password (a new password ends old sessions)."""
    if "logged_in" not in g:
        marker = session.get("auth")
        g.logged_in = bool(marker) and marker == auth.password_fingerprint(current_app.config["DATA_DIR"])
    return bool(g.logged_in)


def log_in() -> None:
    """Start a fresh session (no fixation): new CSRF token, bound to the password."""
    session.clear()
    session.permanent = True
    session["auth"] = auth.password_fingerprint(current_app.config["DATA_DIR"])
    session["csrf"] = pysecrets.token_urlsafe(32)
    g.logged_in = True


def log_out() -> None:
    session.clear()
    g.logged_in = False


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def refuse(status: int, message: str) -> Any:
    if wants_json():
        response = jsonify({"error": message})
        response.status_code = status
        return response
    return current_app.response_class(message + "\n", status=status, mimetype="text/plain")


def check_access() -> Any:
    """Before each request: login for reads unless public, login + CSRF for every POST.

    The machine API (and /metrics sent a token) follows the token rules of api_gate instead."""
    endpoint = request.endpoint or ""
    if api_gate.applies(endpoint):
        return api_gate.check()
    if request.method in ("GET", "HEAD", "OPTIONS"):
        if endpoint in OPEN_ENDPOINTS or current_app.config["PUBLIC_READ"] or logged_in():
            return None
        if wants_json() or endpoint.startswith("files."):
            return refuse(401, "login required")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    # Every state-changing request: the login form needs only the CSRF token (its own checks
    # follow in the view); everything else needs the login too.
    if endpoint != "auth.login" and not logged_in():
        if wants_json():
            return refuse(401, "login required")
        return redirect(url_for("auth.login"))
    if not csrf_ok():
        return refuse(400, "missing or wrong CSRF token; reload the page and try again")
    return None


def add_security_headers(response: Any) -> Any:
    # Everything is served from the device itself: no CDN, no inline script.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    # Defence in depth: pages and answers are built without secrets, but should a part's
    # error message quote one (a share password in an SMB error, say), mask it here too.
    if (not response.direct_passthrough and response.mimetype in REDACTED_TYPES
            and response.content_length is not None and response.content_length < 2_000_000):
        body = response.get_data(as_text=True)
        masked = secrets.redact(body)
        if masked != body:
            response.set_data(masked)
    return response


def install(app: Flask) -> None:
    app.before_request(check_access)
    app.after_request(add_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["logged_in"] = logged_in
