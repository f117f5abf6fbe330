"""The OpenAPI document at /api/openapi.json describes the app's JSON routes, all of them and only them."""

from __future__ import annotations

import re

import pytest

IGNORED_METHODS = {"HEAD", "OPTIONS"}
# JSON routes without a .json suffix: DIGITS' REST session (status, delete) and the actions scripts call.
REST_ROUTES = {
    ("/login", "POST"),
    ("/logout", "POST"),
    ("/jobs/{job_id}", "PUT"),
    ("/jobs/{job_id}", "POST"),
    *((f"/{kind}/{{job_id}}", "DELETE") for kind in ("jobs", "datasets", "models", "pretrained_models")),
    *((f"/{kind}/{{job_id}}/status", "GET") for kind in ("jobs", "datasets", "models")),
    *((f"/{kind}/{{job_id}}/abort", "POST") for kind in ("jobs", "datasets", "models")),
    ("/models/{job_id}/resume", "POST"),
    ("/account/tokens/{token_id}", "DELETE"),
    ("/account/tokens/{token_id}/revoke", "POST"),
    ("/admin/users/{name}", "POST"),
}


def app_routes(app) -> dict[str, set[str]]:
    """Every rule of the app as an OpenAPI path (``<int:token_id>`` -> ``{token_id}``) and its methods."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(rule.methods - IGNORED_METHODS)
    return routes


@pytest.fixture
def document(make_app):
    app = make_app(auth="password")
    with app.test_client() as client:
        assert client.get("/api/openapi.json").status_code == 401  # like every page, in password mode
    client = make_app().test_client()
    answer = client.get("/api/openapi.json")
    assert answer.status_code == 200
    return app, answer.get_json()


def test_every_json_route_is_described_with_its_methods(document):
    app, doc = document
    described = {path: {m.upper() for m in item if m != "parameters"} for path, item in doc["paths"].items()}
    for path, methods in app_routes(app).items():
        if path.endswith(".json"):
            assert described.get(path) == methods, path
    missing = {(path, method) for path, method in REST_ROUTES if method not in described.get(path, ())}
    assert not missing


def test_every_described_path_and_method_exists(document):
    app, doc = document
    routes = app_routes(app)
    for path, item in doc["paths"].items():
        for method in (m.upper() for m in item if m != "parameters"):
            assert method in routes.get(path, ()), f"{method} {path} is described but the app has no such route"


def test_document_names_its_security_and_error_shape(document):
    _, doc = document
    assert doc["openapi"].startswith("3.")
    assert set(doc["components"]["securitySchemes"]) == {"session", "token"}
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    login = doc["paths"]["/login"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"username", "password"} <= set(login["properties"])
    created = doc["paths"]["/models/images/classification.json"]["post"]
    assert "standard_networks" in created["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert doc["servers"] == [{"url": "/"}]
