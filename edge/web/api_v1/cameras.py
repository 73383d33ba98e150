"""``/api/v1/cameras``: each camera with its status, and ``latest.jpg`` for aiming one.

``latest.jpg`` encodes a copy of the camera's newest frame on request. It is limited to
:data:`LATEST_LIMIT` per :data:`LATEST_WINDOW_S` seconds per client address, so a viewer
polling in a loop cannot take the pipeline's CPU.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import current_app, jsonify, request

from edge.context import answer
from edge.timestamps import iso_utc
from edge.web.api_v1.common import ApiError, bp, ctx
from edge.web.ratelimit import SlidingWindow

log = logging.getLogger(__name__)

LATEST_LIMIT = 2
LATEST_WINDOW_S = 1.0
JPEG_QUALITY = 85
LIMITER = "facepro_api_latest_limiter"


def install(app: Any, limiter: SlidingWindow | None = None) -> None:
    app.extensions[LIMITER] = limiter or SlidingWindow(LATEST_LIMIT, LATEST_WINDOW_S)


def _cameras() -> list[dict[str, Any]]:
    reply = answer(ctx().pipeline, lambda p: p.cameras_status(), "api: cameras")
    if not reply.available or reply.value is None:
        raise ApiError(503, "unavailable", f"camera status is not available{': ' + reply.error if reply.error else ''}")
    return reply.value


@bp.get("/cameras")
def cameras_list() -> Any:
    return jsonify({"cameras": _cameras()})


@bp.get("/cameras/<name>/latest.jpg")
def camera_latest(name: str) -> Any:
    limiter: SlidingWindow = current_app.extensions[LIMITER]
    client = request.remote_addr or "unknown"
    if not limiter.allow(client):
        raise ApiError(429, "rate_limited", f"latest.jpg: at most {LATEST_LIMIT} per {LATEST_WINDOW_S:g} s",
                       {"Retry-After": str(limiter.retry_after(client))})
    pipeline = ctx().pipeline
    if pipeline is None:
        raise ApiError(503, "unavailable", "the pipeline is not running")
    try:
        latest = pipeline.latest_frame(name)
    except KeyError:
        raise ApiError(404, "not_found", f"no running camera named {name!r}") from None
    except Exception as exc:
        log.warning("api: latest frame of %s failed: %s", name, exc)
        raise ApiError(503, "unavailable", f"no frame from camera {name!r}: {type(exc).__name__}") from exc
    if latest is None:
        raise ApiError(503, "unavailable", f"camera {name!r} has no frame yet")
    frame, captured_at = latest
    import cv2

    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ApiError(503, "unavailable", f"camera {name!r}: the frame could not be encoded")
    response = current_app.response_class(encoded.tobytes(), mimetype="image/jpeg")
    response.headers["X-Captured-At"] = iso_utc(captured_at, ms=True) or ""
    return response
