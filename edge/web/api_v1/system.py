"""``/api/v1/health``, ``/api/v1/status`` and the API's own description."""
from __future__ import annotations

from typing import Any

from flask import current_app, jsonify

from edge.web import status as status_mod
from edge.web.api_gate import scope
from edge.web.api_v1 import openapi
from edge.web.api_v1.common import bp, ctx


@bp.get("/health")
@scope(None)
def health() -> Any:
    result = status_mod.health(ctx())
    response = jsonify(result)
    response.status_code = 200 if result["status"] == "ok" else 503
    return response


@bp.get("/status")
def status() -> Any:
    return jsonify(status_mod.cached_status(ctx(), current_app.extensions["facepro_status_cache"]))


@bp.get("/openapi.json")
@scope(None)
def openapi_document() -> Any:
    return jsonify(openapi.document())
