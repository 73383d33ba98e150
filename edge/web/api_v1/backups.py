"""``/api/v1/backups``: list, create (a job), job status, and download an archive (admin).

Everything goes through :mod:`edge.web.backups`, the status page's own actions, over the
backup manager. An archive holds the database (embeddings, events, token hashes): only an
admin token downloads one.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from flask import current_app, jsonify, request, url_for

from edge.web import backups as backup_actions
from edge.web.api_gate import current_token, scope
from edge.web.api_v1.common import ApiError, bp, ctx

log = logging.getLogger(__name__)

CHUNK = 1 << 20


@bp.get("/backups")
def backups_list() -> Any:
    return jsonify(backup_actions.overview(ctx()))


@bp.post("/backups")
@scope("admin")
def backups_create() -> Any:
    body = request.get_json(silent=True) if request.data else {}
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'expected a JSON object such as {"target": "usb", "include": ["db"]}')
    unknown = sorted(set(body) - {"target", "include"})
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field(s) {', '.join(unknown)}; expected target, include")
    job_id = backup_actions.start_backup(ctx(), body.get("target"), body.get("include"))
    response = jsonify({"job": job_id, "poll": url_for("api_v1.backup_job", job_id=job_id)})
    response.status_code = 202
    response.headers["Location"] = url_for("api_v1.backup_job", job_id=job_id)
    return response


@bp.get("/backups/jobs/<job_id>")
def backup_job(job_id: str) -> Any:
    return jsonify(backup_actions.job_state(ctx(), job_id))


@bp.get("/backups/targets/<target>/<name>")
@scope("admin")
def backup_download(target: str, name: str) -> Any:
    backup = backup_actions.find_backup(ctx(), target, name)  # 400/404 with the page's messages
    manager: Any = ctx().backups  # find_backup answered: the manager is there
    stack = contextlib.ExitStack()
    try:
        stream, size = stack.enter_context(manager.open_archive(target, backup["name"]))
    except Exception as exc:
        stack.close()
        raise ApiError(503, "unavailable", f"cannot read {name} on {target}: {exc}") from exc

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        finally:
            stack.close()

    token = current_token()
    log.info("api: token %r downloads backup %s from %s (%d bytes)", token.name if token else None, name,
             target, size)
    response = current_app.response_class(chunks(), mimetype="application/octet-stream", direct_passthrough=True)
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = f'attachment; filename="{backup["name"]}"'
    return response
