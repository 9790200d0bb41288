"""The generated OpenAPI document describes every operation, with examples and errors."""

from typing import Any

import pytest

from services.api.app import create_app
from shared.settings import Settings

METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    # Building the schema needs no database or Redis: the lifespan does not run.
    settings = Settings(database_url="sqlite://", jwt_secret="openapi-test-secret-0123456789ab")
    return create_app(settings).openapi()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node


def test_the_schema_has_operations(schema: dict[str, Any]) -> None:
    assert len(_operations(schema)) > 20


def test_every_operation_has_a_summary_or_description(schema: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}"
        for method, path, operation in _operations(schema)
        if not (operation.get("summary") and operation.get("description"))
    ]
    assert not missing


def test_every_request_body_has_an_example(schema: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in _operations(schema):
        body = operation.get("requestBody")
        if body is None:
            continue
        for media_type, content in body["content"].items():
            model = _resolve(schema, content.get("schema", {}))
            if not (content.get("example") or content.get("examples") or model.get("examples")):
                missing.append(f"{method} {path} ({media_type})")
    assert not missing


def test_every_authenticated_operation_declares_401(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT signed with CHORUS_JWT_SECRET",
    }
    authenticated = [
        (method, path, operation)
        for method, path, operation in _operations(schema)
        if operation.get("security")
    ]
    assert len(authenticated) > 10
    missing = [f"{m} {p}" for m, p, op in authenticated if "401" not in op["responses"]]
    assert not missing


def test_error_responses_use_the_shared_error_body(schema: dict[str, Any]) -> None:
    error_body = schema["components"]["schemas"]["ErrorPublic"]
    assert error_body["examples"][0]["error"]["code"]
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorPublic"}, (
                f"{method} {path} {status}"
            )
            assert content["example"]["error"]["code"], f"{method} {path} {status}"
