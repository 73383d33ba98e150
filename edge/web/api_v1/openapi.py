"""The OpenAPI 3.1 description of ``/api/v1/``, kept by hand beside the views.

tests/test_api_openapi.py checks it both ways against the app's routes (every route
documented, every documented operation routed) and validates it with openapi-spec-validator.
"""
from __future__ import annotations

import copy
from typing import Any

import edge
from edge.web.api_v1.common import ERROR_CODES

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


READ: list[dict[str, list[str]]] = [{"bearer": []}]
OPEN: list[dict[str, list[str]]] = []


def _op(summary: str, ok: dict[str, Any], *, status: str = "200", params: list[dict[str, Any]] | None = None,
        errors: tuple[int, ...] = (), security: list[dict[str, list[str]]] | None = None, admin: bool = False,
        body: dict[str, Any] | None = None) -> dict[str, Any]:
    auth_errors = () if security == OPEN else ((401, 403, 429) if admin else (401, 429))
    op: dict[str, Any] = {"summary": summary + (" (admin token)" if admin else ""),
                          "security": READ if security is None else security,
                          "responses": {status: ok, **_errors(*auth_errors, *errors)}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


def _path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


OBJECT = {"type": "object"}
PHOTOS = {"type": "array", "items": {"type": "string", "contentMediaType": "image/jpeg"},
          "description": "JPEG or PNG photos, exactly one face each (at most 20)"}
JPEG = {"content": {"image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}}}}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "string", "enum": list(ERROR_CODES)}, "message": {"type": "string"}}},
    "Health": {"type": "object", "required": ["status"],
               "properties": {"status": {"enum": ["ok", "unhealthy"]},
                              "reasons": {"type": "array", "items": {"type": "string"}}}},
    "Person": {"type": "object", "required": ["id", "name", "faces"],
               "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                              "created_at": {"type": ["string", "null"], "format": "date-time"},
                              "faces": {"type": "integer", "description": "enrolled face embeddings"},
                              "added": {"type": "integer", "description": "faces this request added"}}},
    "Event": {"type": "object", "required": ["id", "type", "timestamp"],
              "properties": {"id": {"type": "integer"}, "type": {"type": "string"},
                             "person": {"type": ["string", "null"]}, "confidence": {"type": ["number", "null"]},
                             "camera": {"type": ["string", "null"]}, "method": {"type": ["string", "null"]},
                             "timestamp": {"type": "string", "format": "date-time"},
                             "snapshot": {"type": ["string", "null"], "description": "URL of the snapshot JPEG"}}},
    "Camera": {"type": "object", "required": ["name", "online"],
               "properties": {"name": {"type": "string"}, "online": {"type": "boolean"},
                              "fps_capture": {"type": "number"}, "fps_processed": {"type": "number"},
                              "last_frame_at": {"type": ["string", "null"]}, "error": {"type": ["string", "null"]}},
               "additionalProperties": True},
    "Job": {"type": "object", "required": ["id", "state"],
            "properties": {"id": {"type": "string"}, "state": {"enum": ["running", "ok", "failed"]},
                           "progress": {"type": "number"}, "message": {"type": ["string", "null"]},
                           "result": {}}, "additionalProperties": True},
}

RESPONSES = {f"E{status}": _json(_ref("Error"), text) for status, text in (
    (400, "Bad input: the message names the field or file"), (401, "No token, or a wrong, revoked or expired one"),
    (403, "The token's scope does not allow this"), (404, "Not found"), (409, "Conflict"),
    (413, "Upload too large (bytes: web.max_upload_mb; pixels: the image limit)"),
    (429, "Too many requests (Retry-After says when to try again)"), (503, "The part is not available"))}

NAME = _path_param("name", "the person's name (URL-encoded)")
EVENT_ID = _path_param("event_id", "the event's id", {"type": "integer", "minimum": 1})
MULTIPART_PHOTOS = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["photos"], "properties": {"photos": PHOTOS}}}}}

PATHS: dict[str, Any] = {
    "/health": {"get": _op("Liveness: database, pipeline and cameras", _json(_ref("Health"), "Healthy"),
                           security=OPEN, errors=(503,))},
    "/status": {"get": _op("Everything the dashboard shows, as JSON", _json(OBJECT, "The device status"))},
    "/openapi.json": {"get": _op("This document", _json(OBJECT, "OpenAPI 3.1"), security=OPEN)},
    "/people": {
        "get": _op("Enrolled people", _json({"type": "object", "properties": {
            "people": {"type": "array", "items": _ref("Person")}}}, "People"), errors=(503,)),
        "post": _op("Add a person: JSON {name} without faces, or multipart name + photos (all or nothing)",
                    _json(_ref("Person"), "Created"), status="201", admin=True, errors=(400, 409, 413, 503),
                    body={"required": True, "content": {
                        JSON: {"schema": {"type": "object", "required": ["name"],
                                          "properties": {"name": {"type": "string"}}}},
                        "multipart/form-data": {"schema": {"type": "object", "required": ["name", "photos"],
                                                           "properties": {"name": {"type": "string"},
                                                                          "photos": PHOTOS}}}}}),
    },
    "/people/{name}": {
        "get": _op("One person", _json(_ref("Person"), "The person"), params=[NAME], errors=(404, 503)),
        "delete": _op("Remove a person, their embeddings and face images",
                      _json(OBJECT, "Removed"), params=[NAME], admin=True, errors=(404, 503)),
    },
    "/people/{name}/faces": {
        "post": _op("Add faces from photos (all or nothing, exactly one face per photo)",
                    _json(_ref("Person"), "Faces added"), status="201", params=[NAME], admin=True,
                    errors=(400, 404, 413, 503), body=MULTIPART_PHOTOS)},
    "/events": {"get": _op(
        "Events, newest first; follow `next` for older ones", _json({"type": "object", "properties": {
            "events": {"type": "array", "items": _ref("Event")}, "next": {"type": ["string", "null"]}}}, "Events"),
        params=[_query("camera", "only this camera", {"type": "string"}),
                _query("person", "only this label (a name, or unknown)", {"type": "string"}),
                _query("type", "only this event type", {"type": "string"}),
                _query("limit", "page size (default 50)", {"type": "integer", "minimum": 1, "maximum": 500}),
                _query("before_id", "only events older than this id", {"type": "integer", "minimum": 1})],
        errors=(400, 503))},
    "/events/{event_id}": {"get": _op("One event", _json(_ref("Event"), "The event"), params=[EVENT_ID],
                                      errors=(404, 503))},
    "/events/{event_id}/snapshot.jpg": {"get": _op("The event's snapshot", {"description": "JPEG", **JPEG},
                                                   params=[EVENT_ID], errors=(404, 503))},
    "/cameras": {"get": _op("Cameras with their status", _json({"type": "object", "properties": {
        "cameras": {"type": "array", "items": _ref("Camera")}}}, "Cameras"), errors=(503,))},
    "/cameras/{name}/latest.jpg": {"get": _op(
        "The camera's newest frame, for aiming it (at most 2 a second per client)",
        {"description": "JPEG", **JPEG}, params=[_path_param("name", "the camera's name")], errors=(404, 503))},
    "/backups": {
        "get": _op("Backups on each target, and the last backup's status", _json(OBJECT, "Backups"), errors=(503,)),
        "post": _op("Start a backup job", _json({"type": "object", "properties": {
            "job": {"type": "string"}, "poll": {"type": "string"}}}, "Started"), status="202", admin=True,
            errors=(400, 409, 503), body={"required": False, "content": {JSON: {"schema": {
                "type": "object", "additionalProperties": False, "properties": {
                    "target": {"type": "string"},
                    "include": {"type": "array", "items": {"enum": ["db", "faces", "settings"]}}}}}}}),
    },
    "/backups/jobs/{job_id}": {"get": _op("A backup job's state and progress", _json(_ref("Job"), "The job"),
                                          params=[_path_param("job_id", "from POST /backups")], errors=(404, 503))},
    "/backups/targets/{target}/{name}": {"get": _op(
        "Download a backup archive", {"description": "The archive", "content": {
            "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/zip"}}}},
        params=[_path_param("target", "a configured backup target"), _path_param("name", "the archive's name")],
        admin=True, errors=(400, 404, 503))},
}


def document() -> dict[str, Any]:
    """The whole document (a fresh copy each call: callers may change theirs)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "FacePro Edge machine API", "version": edge.__version__,
                 "description": "Send a token made with `facepro web token create NAME [--scope read|admin]` as "
                                "`Authorization: Bearer TOKEN`. A read token may use every GET except the backup "
                                "download; everything else needs an admin token. Browser sessions are not "
                                "accepted here. Errors are JSON: {code, message}."},
        "servers": [{"url": "/api/v1"}],
        "security": READ,
        "paths": PATHS,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": SCHEMAS, "responses": RESPONSES},
    })
