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


MAX_NEXT = 512
ACCOUNT = "technician"  # the one account: its limiter counts guesses from every address


def local_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else "" (never another host: no scheme,
    no ``//`` or ``/\\`` host, no control characters, not the login/logout page itself)."""
    if not target or len(target) > MAX_NEXT or not target.startswith("/") or target.startswith(("//", "/\\")):
        return ""
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in (url_for("auth.login"), url_for("auth.logout")):
        return ""
    return target


def _safe_next(target: str | None) -> str:
    return local_next(target) or url_for("pages.dashboard")


def _too_many(limiter: auth.LoginRateLimiter, key: str) -> Any:
    response = current_app.response_class(
        render_template("login.html", next="", password_set=True,
                        error="Too many login attempts. Wait a few minutes and try again."),
        status=429)
    response.headers["Retry-After"] = str(limiter.retry_after(key))
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    data_dir = current_app.config["DATA_DIR"]
    if request.method == "GET":
        return render_template("login.html", next=local_next(request.args.get("next")),
                               password_set=auth.load_password_record(data_dir) is not None)
    client = request.remote_addr or "unknown"
    limiter: auth.LoginRateLimiter = current_app.extensions["facepro_login_limiter"]
    account: auth.LoginRateLimiter = current_app.extensions["facepro_account_limiter"]
    if not limiter.allow(client):
        log.warning("login rate limit reached for %s", client)
        return _too_many(limiter, client)
    if not account.allow(ACCOUNT):
        log.warning("login rate limit of the technician account reached (attempt from %s)", client)
        return _too_many(account, ACCOUNT)
    if auth.verify_password(data_dir, request.form.get("password", "")):
        log_in()
        limiter.forget(client)
        account.forget(ACCOUNT)
        log.info("technician logged in from %s", client)
        return redirect(_safe_next(request.form.get("next")))
    log.warning("failed technician login from %s", client)
    return render_template("login.html", next=local_next(request.form.get("next")), password_set=True,
                           error="Wrong password."), 401


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if logged_in():
        log_out()
        flash("Logged out.")
    return redirect(url_for("auth.login"))
