"""The OpenAPI document at /api/v1/openapi.json: valid OpenAPI 3.1, and the same operations
as the app's routes, both ways."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.api import make_api

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def api(tmp_path: Path, write_settings: Any, data_dir: Path) -> Any:
    return make_api(tmp_path, write_settings, data_dir)


def routed(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every /api/v1/ route, with <int:x> written {x}."""
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        out |= {(method.lower(), path) for method in rule.methods if method.lower() in METHODS}
    return out


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_the_document_is_valid_openapi_3_1_and_served_without_a_token(api: Any) -> None:
    response = api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_route_is_documented_and_every_documented_operation_is_routed(api: Any) -> None:
    document = api.client.get("/api/v1/openapi.json").get_json()
    routes, described = routed(api.app), documented(document)
    assert len(routes) >= 17
    assert routes - described == set(), "routes missing from the document"
    assert described - routes == set(), "documented operations without a route"


def test_documented_parameters_and_scopes_match_the_views(api: Any) -> None:
    document = api.client.get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        placeholders = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == placeholders, (method, path)
            view = api.app.view_functions[api.app.url_map.bind("").match(f"/api/v1{path}".replace(
                "{event_id}", "1").replace("{", "").replace("}", ""), method=method.upper())[0]]
            scope = getattr(view, "api_scope", "read" if method == "get" else "admin")
            assert (op["security"] == []) == (scope is None), (method, path)
            assert ("(admin token)" in op["summary"]) == (scope == "admin"), (method, path)
            assert ("401" in op["responses"]) == (scope is not None), (method, path)


def test_a_broken_document_would_fail_validation() -> None:
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    from edge.web.api_v1 import openapi

    broken = openapi.document()
    broken["paths"]["/people"]["get"]["responses"]["200"] = {"content": {}}  # no description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)
