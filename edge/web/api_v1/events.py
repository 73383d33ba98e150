"""``/api/v1/events``: the event list (filters, paging by ``before_id``), one event, its snapshot."""
from __future__ import annotations

import sqlite3
from typing import Any

from flask import jsonify, request, url_for

from edge.db import web_queries
from edge.web.api_v1.common import ApiError, bp, ctx
from edge.web.views_api import event_query_args
from edge.web.views_files import relative_snapshot_path, send_snapshot

DEFAULT_LIMIT = 50


def _event(row: dict[str, Any]) -> dict[str, Any]:
    path = row.pop("snapshot_path", None)
    has_snapshot = relative_snapshot_path(ctx(), path) is not None
    row["snapshot"] = url_for("api_v1.event_snapshot", event_id=row["id"]) if has_snapshot else None
    return row


def _one(event_id: int) -> dict[str, Any]:
    try:
        row = web_queries.get_event(ctx().db_path, event_id)
    except sqlite3.Error as exc:
        raise ApiError(503, "unavailable", f"events are not available: {exc}") from exc
    if row is None:
        raise ApiError(404, "not_found", f"no event with id {event_id}")
    return row


@bp.get("/events")
def events_list() -> Any:
    try:
        args = event_query_args()
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    args.setdefault("limit", DEFAULT_LIMIT)
    try:
        rows = web_queries.list_events(ctx().db_path, **args)
    except sqlite3.Error as exc:
        raise ApiError(503, "unavailable", f"events are not available: {exc}") from exc
    following = None
    if len(rows) == args["limit"]:
        query = {k: v for k, v in request.args.items() if k != "before_id"}
        following = url_for("api_v1.events_list", **dict(query, before_id=rows[-1]["id"]))
    return jsonify({"events": [_event(row) for row in rows], "next": following})


@bp.get("/events/<int:event_id>")
def event_get(event_id: int) -> Any:
    return jsonify(_event(_one(event_id)))


@bp.get("/events/<int:event_id>/snapshot.jpg")
def event_snapshot(event_id: int) -> Any:
    relative = relative_snapshot_path(ctx(), _one(event_id)["snapshot_path"])
    if relative is None:
        raise ApiError(404, "not_found", f"event {event_id} has no snapshot")
    return send_snapshot(ctx(), relative)
