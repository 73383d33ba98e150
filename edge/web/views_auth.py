"""Login and logout for the technician."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from edge.web import auth
from edge.web.security import log_in, log_out, logged_in

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect to another host after login."""
    if not target:
        return url_for("pages.dashboard")
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or parts.path in (url_for("auth.login"), url_for("auth.logout"))):
        return url_for("pages.dashboard")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    data_dir = current_app.config["DATA_DIR"]
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""),
                               password_set=auth.load_password_record(data_dir) is not None)
    client = request.remote_addr or "unknown"
    limiter: auth.LoginRateLimiter = current_app.extensions["facepro_login_limiter"]
    if not limiter.allow(client):
        log.warning("login rate limit reached for %s", client)
        response = current_app.response_class(
            render_template("login.html", next="", password_set=True,
                            error="Too many login attempts. Wait a minute and try again."),
            status=429)
        response.headers["Retry-After"] = str(limiter.retry_after(client))
        return response
    if auth.verify_password(data_dir, request.form.get("password", "")):
        log_in()
        limiter.forget(client)
        log.info("technician logged in from %s", client)
        return redirect(_safe_next(request.form.get("next")))
    log.warning("failed technician login from %s", client)
    return render_template("login.html", next=request.form.get("next", ""), password_set=True,
                           error="Wrong password."), 401


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if logged_in():
        log_out()
        flash("Logged out.")
    return redirect(url_for("auth.login"))
