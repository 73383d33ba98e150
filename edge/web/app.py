"""The Flask app factory: ``create_app(ctx)`` builds the status page and API for one service."""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from edge.context import ServiceContext
from edge.db.web_sessions import SessionStore, sessions_file
from edge.web import auth, security
from edge.web.security import wants_json
from edge.web.status import TTLCache

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def _fmt_bytes(value: Any) -> str:
    if value is None:
        return "—"
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _fmt_percent(value: Any) -> str:
    if value is None:
        return "—"
    try:
        return f"{float(value):.0f} %"
    except (TypeError, ValueError):
        return "?"


def _fmt_duration(seconds: Any) -> str:
    try:
        total = int(float(seconds))
    except (TypeError, ValueError):
        return "?"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def create_app(ctx: ServiceContext, *, login_limiter: auth.LoginRateLimiter | None = None,
               account_limiter: auth.LoginRateLimiter | None = None, status_cache_s: float = 1.0,
               clock: Any = None) -> Flask:
    """The app for ``ctx``; reads ``web.*`` settings, keeps its key and password in the data dir.

    The status and chart answers are computed at most once per ``status_cache_s``; ``clock``
    (tests) replaces ``time.time`` for the session lifetimes."""
    app = Flask("edge.web", root_path=str(HERE), template_folder="templates", static_folder="static")
    settings = ctx.settings
    app.config.update(
        SECRET_KEY=auth.load_secret_key(ctx.data_dir),
        SESSION_COOKIE_NAME="facepro_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # web.secure_cookies: behind a TLS proxy the cookie must never travel in clear text.
        SESSION_COOKIE_SECURE=bool(settings["web.secure_cookies"]),
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=float(settings["web.session_max_age_s"])),
        MAX_CONTENT_LENGTH=int(settings["web.max_upload_mb"] * 1024 * 1024),
        PUBLIC_READ=bool(settings["web.public_read"]),
        DATA_DIR=ctx.data_dir,
        FACEPRO_CTX=ctx,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["facepro_login_limiter"] = login_limiter or auth.LoginRateLimiter(limit=5, window_s=60)
    # Guesses spread over many addresses meet this one: 10 per 5 minutes for the account.
    app.extensions["facepro_account_limiter"] = account_limiter or auth.LoginRateLimiter(limit=10, window_s=300)
    app.extensions["facepro_sessions"] = SessionStore(
        sessions_file(ctx.data_dir), max_age_s=settings["web.session_max_age_s"],
        idle_s=settings["web.session_idle_s"], clock=clock or time.time)
    app.extensions["facepro_status_cache"] = TTLCache(status_cache_s)
    app.jinja_env.filters["bytes"] = _fmt_bytes
    app.jinja_env.filters["duration"] = _fmt_duration
    app.jinja_env.filters["percent"] = _fmt_percent
    app.jinja_env.globals["device_name"] = settings["device.name"]

    from edge.web import api_v1, views_api, views_auth, views_files, views_pages

    security.install(app)
    app.register_blueprint(views_auth.bp)
    app.register_blueprint(views_pages.bp)
    app.register_blueprint(views_api.bp)
    app.register_blueprint(views_files.bp)
    api_v1.install(app)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"upload too large: the limit is {settings['web.max_upload_mb']:g} MB (web.max_upload_mb)"
        if api_v1.applies_to(request.path):
            return api_v1.error_for(exc, message)
        if wants_json():
            response = jsonify({"error": message})
            response.status_code = exc.code or 500
            return response
        return render_template("error.html", code=exc.code, name=exc.name, message=message), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("%s %s failed", request.method, request.path)
        if api_v1.applies_to(request.path):
            return api_v1.error_for(exc, f"internal error: {type(exc).__name__}; see the service log")
        if wants_json():
            response = jsonify({"error": f"internal error: {type(exc).__name__}"})
            response.status_code = 500
            return response
        return render_template("error.html", code=500, name="Internal error",
                               message=f"{type(exc).__name__}; see the service log"), 500

    return app
