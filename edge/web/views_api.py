"""The JSON API (and the Prometheus text at /metrics) for installers, watchdogs and the page's script."""
from __future__ import annotations

import logging
import math
from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for

from edge.context import ServiceContext
from edge.db import web_queries
from edge.secrets import masked
from edge.web import backups as backup_actions
from edge.web import status as status_mod
from edge.web.errors import ActionError
from edge.web.views_files import relative_snapshot_path

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)
HISTORY_MIN_S, HISTORY_MAX_S = 10.0, 86400.0  # /api/history?window=


def ctx() -> ServiceContext:
    return current_app.config["FACEPRO_CTX"]


def status_cache() -> status_mod.TTLCache:
    return current_app.extensions["facepro_status_cache"]


def json_error(status: int, message: str) -> Any:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def snapshot_url(path: str | None) -> str | None:
    """The /snapshots/ URL of an event's snapshot, or None when it lies outside the snapshot dir."""
    relative = relative_snapshot_path(ctx(), path)
    return url_for("files.snapshot", path=relative) if relative else None


@bp.get("/api/health")
def health() -> Any:
    result = status_mod.health(ctx())
    response = jsonify(result)
    response.status_code = 200 if result["status"] == "ok" else 503
    return response


@bp.get("/api/status")
def status() -> Any:
    return jsonify(status_mod.cached_status(ctx(), status_cache()))


@bp.get("/api/history")
def history() -> Any:
    window = request.args.get("window", "600")
    try:
        window_s = float(window)
    except ValueError:
        window_s = math.nan
    if not HISTORY_MIN_S <= window_s <= HISTORY_MAX_S:  # NaN fails this too
        return json_error(400, f"window: expected a number of seconds from {HISTORY_MIN_S:g} to "
                               f"{HISTORY_MAX_S:g}, got {window!r}")
    return jsonify(status_mod.cached_charts(ctx(), status_cache(), window_s))


def event_query_args() -> dict[str, Any]:
    """Filters shared by /events and /api/events; raises ValueError naming the bad argument."""
    args: dict[str, Any] = {
        "camera": request.args.get("camera") or None,
        "person": request.args.get("person") or None,
        "event_type": request.args.get("type") or None,
    }
    for name, low, high in (("limit", 1, web_queries.MAX_EVENTS), ("before_id", 1, None)):
        raw = request.args.get(name)
        if raw in (None, ""):
            continue
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name}: expected an integer, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"{name}: {value} is outside {low}..{high or 'any'}")
        args[name] = value
    return args


@bp.get("/api/events")
def events() -> Any:
    try:
        args = event_query_args()
    except ValueError as exc:
        return json_error(400, str(exc))
    try:
        rows = web_queries.list_events(ctx().db_path, **args)
    except Exception as exc:
        log.warning("events query failed: %s", exc)
        return json_error(503, f"events are not available: {masked(str(exc))}")
    for row in rows:
        row["snapshot"] = snapshot_url(row.pop("snapshot_path"))
    return jsonify({"events": rows})


@bp.get("/api/backups")
def backups_list() -> Any:
    manager = ctx().backups
    if manager is None:
        return json_error(503, "backups are not available")
    try:
        return jsonify(backup_actions.overview(ctx()))
    except Exception as exc:
        log.warning("listing backups failed: %s", exc)
        return json_error(503, f"listing backups failed: {masked(str(exc))}")


@bp.post("/api/backups")
def backups_create() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        form = request.form.to_dict(flat=False)
        targets = form.get("target") or []
        body = {"target": targets[0] if targets else None, "include": form.get("include")}
    if not isinstance(body, dict):
        return json_error(400, "expected a JSON object {target, include}")
    try:
        job_id = backup_actions.start_backup(ctx(), body.get("target"), body.get("include"))
    except ActionError as exc:
        return json_error(exc.status, str(exc))
    response = jsonify({"job": job_id, "poll": url_for("api.backup_job", job_id=job_id)})
    response.status_code = 202
    return response


@bp.get("/api/backups/jobs/<job_id>")
def backup_job(job_id: str) -> Any:
    try:
        return jsonify(backup_actions.job_state(ctx(), job_id))
    except ActionError as exc:
        return json_error(exc.status, str(exc))


@bp.get("/metrics")
def metrics() -> Any:
    try:
        from edge.telemetry import prometheus
    except ImportError:
        return current_app.response_class("metrics are not available\n", status=503, mimetype="text/plain")
    try:
        body, content_type = prometheus.render(ctx())
    except Exception as exc:
        log.warning("rendering /metrics failed: %s", exc)
        return current_app.response_class(f"metrics are not available: {masked(str(exc))}\n", status=503,
                                          mimetype="text/plain")
    return current_app.response_class(body, status=200, content_type=content_type)
