"""``/api/v1/people``: list, create, add faces (multipart photos, all or nothing), remove.

Enrolment goes through :mod:`edge.web.people` (the status page's path), which runs the
CLI's checks: the name, exactly one face per photo, every photo analysed before anything
is written. Before that, each upload's pixel size is read from its header and refused
above the limit, so a small file declaring a huge image is never decoded.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from flask import jsonify, request

from edge.db import faces as faces_store
from edge.db import web_queries
from edge.db.connection import connect
from edge.images import ImageRefused, check_image_header
from edge.web import people as people_actions
from edge.web.api_gate import scope
from edge.web.api_v1.common import ApiError, bp, ctx, from_action
from edge.web.errors import ActionError


def _person(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created_at": row["created_at"], "faces": row["embeddings"]}


def _people() -> list[dict[str, Any]]:
    try:
        return web_queries.list_people(ctx().db_path)
    except sqlite3.Error as exc:
        raise ApiError(503, "unavailable", f"people are not available: {exc}") from exc


def _find(name: str) -> dict[str, Any] | None:
    return next((p for p in _people() if p["name"] == name), None)


def _valid_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ApiError(400, "bad_request", "name: expected the person's name as a string")
    try:
        from edge.pipeline.enroll import EnrollError, validate_name
    except ImportError as exc:
        raise ApiError(503, "unavailable", f"enrolment is not available on this device ({exc})") from exc
    try:
        return validate_name(" ".join(name.split()))
    except EnrollError as exc:
        raise ApiError(400, "bad_request", f"name: {exc}") from exc


def _photos() -> list[tuple[str, bytes]]:
    """The uploaded ``photos`` parts, each checked for its pixel size before any decoding."""
    uploads = [f for f in request.files.getlist("photos") if f]
    if not uploads:
        raise ApiError(400, "bad_request", "photos: send one or more photos as multipart/form-data parts "
                       "named 'photos'")
    if len(uploads) > people_actions.MAX_PHOTOS:
        raise ApiError(400, "bad_request", f"photos: at most {people_actions.MAX_PHOTOS} at a time")
    photos = []
    for index, upload in enumerate(uploads, start=1):
        label = upload.filename or f"photo {index}"
        data = upload.read()
        try:
            check_image_header(data, label)
        except ImageRefused as exc:
            raise ApiError(413 if exc.too_large else 400,
                           "image_too_large" if exc.too_large else "photo_rejected", str(exc)) from None
        photos.append((label, data))
    return photos


def _enrol(name: str, photos: list[tuple[str, bytes]]) -> dict[str, Any]:
    try:
        result = people_actions.enroll(ctx(), name, photos)
    except ActionError as exc:
        raise from_action(exc, "photo_rejected" if exc.status == 400 else None) from exc
    return {"name": result["name"], "added": result["added"]}


@bp.get("/people")
def people_list() -> Any:
    return jsonify({"people": [_person(p) for p in _people()]})


@bp.get("/people/<name>")
def person_get(name: str) -> Any:
    person = _find(name)
    if person is None:
        raise ApiError(404, "not_found", f"no enrolled person named {name!r}")
    return jsonify(_person(person))


@bp.post("/people")
@scope("admin")
def person_create() -> Any:
    """JSON ``{"name"}`` adds a person with no faces yet; multipart ``name`` + ``photos``
    adds the person with those faces (all or nothing)."""
    body = request.get_json(silent=True) if request.is_json else None
    name = _valid_name(body.get("name") if isinstance(body, dict) else request.form.get("name"))
    if _find(name) is not None:
        raise ApiError(409, "conflict", f"a person named {name!r} is enrolled; add faces with "
                       f"POST /api/v1/people/{{name}}/faces")
    if request.is_json:
        conn = connect(ctx().db_path, busy_timeout_ms=ctx().settings["database.busy_timeout_ms"])
        try:
            created = faces_store.create_user(conn, name)
        finally:
            conn.close()
        if created is None:
            raise ApiError(409, "conflict", f"a person named {name!r} is enrolled")
        added = 0
    else:
        added = _enrol(name, _photos())["added"]
    person = _find(name)
    response = jsonify(dict(_person(person) if person else {"name": name}, added=added))
    response.status_code = 201
    return response


@bp.post("/people/<name>/faces")
@scope("admin")
def person_add_faces(name: str) -> Any:
    if _find(name) is None:
        raise ApiError(404, "not_found", f"no enrolled person named {name!r}; create them first "
                       "(POST /api/v1/people)")
    result = _enrol(name, _photos())
    person = _find(name)
    response = jsonify(dict(_person(person) if person else {"name": name}, added=result["added"]))
    response.status_code = 201
    return response


@bp.delete("/people/<name>")
@scope("admin")
def person_remove(name: str) -> Any:
    result = people_actions.remove(ctx(), name)
    return jsonify({"name": result["name"], "removed_faces": result["removed_embeddings"]})
