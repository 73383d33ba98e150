"""What every machine API view shares: the blueprint, the error shape and its stable codes.

Every error is ``{"code": "...", "message": "..."}`` with an HTTP status; the codes are a
contract (the OpenAPI document lists them), the messages are for people.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from werkzeug.exceptions import HTTPException

from edge.context import ServiceContext
from edge.web.errors import ActionError

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

# Every code an answer may carry (the gate's refusals included).
ERROR_CODES = (
    "bad_request", "token_required", "invalid_token", "token_revoked", "token_expired", "token_in_url",
    "insufficient_scope", "not_found", "method_not_allowed", "conflict", "upload_too_large", "image_too_large",
    "photo_rejected", "too_many_failures", "rate_limited", "unavailable", "failed", "internal_error",
)
_BY_STATUS = {400: "bad_request", 401: "token_required", 403: "insufficient_scope", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "upload_too_large", 429: "rate_limited",
              503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def code_for(status: int) -> str:
    return _BY_STATUS.get(status, "unavailable" if status > 500 else "failed")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def from_action(exc: ActionError, code: str | None = None) -> ApiError:
    """An action's refusal as an API error (its status; the code by status unless given)."""
    return ApiError(exc.status, code or code_for(exc.status), str(exc))


def http_error(exc: HTTPException, message: str) -> Any:
    status = exc.code or 500
    return error_response(status, "internal_error" if status == 500 else code_for(status), message)


def ctx() -> ServiceContext:
    return current_app.config["FACEPRO_CTX"]


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


@bp.errorhandler(ActionError)
def _action_error(exc: ActionError) -> Any:
    api = from_action(exc)
    return error_response(api.status, api.code, api.message)
