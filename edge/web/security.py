"""Login state, CSRF tokens and the access rules applied before every request.

The signed cookie carries the CSRF token, flash messages and, once logged in, the random
token of a server-side session (:mod:`edge.db.web_sessions`); being logged in means that
session is live in the sessions file, so a logout or a revocation ends it for every copy of
the cookie. Nothing here searches a rendered page for secrets: values that may carry one
are masked where they are built (:func:`edge.web.status.masked`), and user input is never
masked, so no answer can tell whether a guess was a secret.
"""
from __future__ import annotations

import hmac
import secrets as pysecrets
from typing import Any

from flask import Flask, current_app, g, jsonify, redirect, request, session, url_for

from edge.db.web_sessions import SessionStore
from edge.web import api_gate, auth

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Reachable without login even when reading is not public.
OPEN_ENDPOINTS = {"auth.login", "api.health", "static"}


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


def session_store() -> SessionStore:
    return current_app.extensions["facepro_sessions"]


def current_session_id() -> int | None:
    """The id of this request's live server-side session, or None."""
    if "session_id" not in g:
        g.session_id = None
        marker = session.get("auth")
        if marker and marker == auth.password_fingerprint(current_app.config["DATA_DIR"]):
            g.session_id = session_store().check(session.get("sid"))
    return g.session_id


def logged_in() -> bool:
    """True while this cookie's server-side session is live (logout, revocation and a new
    password end it)."""
    return current_session_id() is not None


def log_in() -> None:
    """Start a fresh session (no fixation): a new server-side session and CSRF token."""
    token, session_id = session_store().create(request.remote_addr, request.headers.get("User-Agent"))
    session.clear()
    session.permanent = True
    session["auth"] = auth.password_fingerprint(current_app.config["DATA_DIR"])
    session["sid"] = token
    session["csrf"] = pysecrets.token_urlsafe(32)
    g.session_id = session_id


def log_out() -> None:
    """End the session on the server too: the cookie, wherever copied, stops working."""
    session_store().revoke_token(session.get("sid"))
    session.clear()
    g.session_id = None


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
    return response


def install(app: Flask) -> None:
    app.before_request(check_access)
    app.after_request(add_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["logged_in"] = logged_in
