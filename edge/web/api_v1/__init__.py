"""The machine API, ``/api/v1/``: JSON for scripts, fleets and Prometheus, behind bearer tokens.

Access rules are in :mod:`edge.web.api_gate`, the description in :mod:`.openapi`. Each
module here registers its routes on the one blueprint of :mod:`.common`.
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from edge.web import api_gate
from edge.web.api_v1 import backups, cameras, events, people, system
from edge.web.api_v1.common import bp, error_response, http_error

__all__ = ["applies_to", "error_for", "install"]

_ROUTES = (backups, cameras, events, people, system)  # imported for the routes they register


def install(app: Flask) -> None:
    """Register the API and its gate on ``app`` (``create_app`` calls this)."""
    api_gate.install(app, app.config["FACEPRO_CTX"].db_path)
    cameras.install(app)
    app.register_blueprint(bp)


def applies_to(path: str) -> bool:
    return path.startswith(api_gate.PREFIX)


def error_for(exc: Exception, message: str) -> Any:
    """The API's JSON error for an exception the app's handlers caught under /api/v1/."""
    if isinstance(exc, HTTPException):
        return http_error(exc, message)
    return error_response(500, "internal_error", message)
