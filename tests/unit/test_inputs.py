"""Every way into the API is typed so that nothing a column cannot hold gets through.

These read the app's own OpenAPI document, so a new route or field that forgets the rules
fails here, not in production.
"""

import re
from typing import Any

import pytest
from pydantic import ValidationError

from services.api.app import create_app
from services.api.inputs import InputModel
from shared.ids import COMMENT_ID_PATTERN, MAX_COMMENT_ID_CHARS, new_id
from shared.settings import Settings
from shared.validation import MAX_SQL_INTEGER

METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    settings = Settings(database_url="sqlite://", jwt_secret="inputs-test-secret-0123456789abcd")
    return create_app(settings).openapi()


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _subclasses(cls: type) -> set[str]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub.__name__, *_subclasses(sub)}
    return found


def _schema_of(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas a parameter or a body may take (an optional one is anyOf [T, null])."""
    node = node.get("schema", node)
    return [s for s in node.get("anyOf", [node]) if s.get("type") != "null"]


def test_every_request_body_is_an_input_model(schema: dict[str, Any]) -> None:
    input_models = _subclasses(InputModel)
    bodies = {}
    for name, operation in _operations(schema):
        body = operation.get("requestBody")
        if body is not None:
            # An optional body (reject's reason) is anyOf [the model, null].
            [model] = _schema_of(schema, body["content"]["application/json"])
            bodies[name] = model["$ref"].removeprefix("#/components/schemas/")

    assert len(bodies) >= 8
    assert {n: model for n, model in bodies.items() if model not in input_models} == {}


def _fits_an_sql_integer(s: dict[str, Any]) -> bool:
    return s.get("minimum", -1) >= 0 and s.get("maximum", MAX_SQL_INTEGER + 1) <= MAX_SQL_INTEGER


def test_every_integer_parameter_fits_an_sql_integer(schema: dict[str, Any]) -> None:
    unbounded = [
        f"{name} {parameter['name']}"
        for name, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        for s in _schema_of(schema, parameter)
        if s.get("type") == "integer" and not _fits_an_sql_integer(s)
    ]
    assert unbounded == []


def test_every_string_parameter_is_bounded(schema: dict[str, Any]) -> None:
    unbounded = [
        f"{name} {parameter['name']}"
        for name, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        if parameter["in"] in ("path", "query")
        for s in _schema_of(schema, parameter)
        if s.get("type") == "string" and not ("maxLength" in s or "enum" in s)
    ]
    assert unbounded == []


def test_comment_ids_in_paths_follow_the_one_comment_id_type(schema: dict[str, Any]) -> None:
    params = [
        s
        for _, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "comment_id"
        for s in _schema_of(schema, parameter)
    ]
    assert len(params) >= 6
    assert all(p["pattern"] == COMMENT_ID_PATTERN for p in params)
    assert all(p["maxLength"] == MAX_COMMENT_ID_CHARS for p in params)


def test_generated_ids_are_comment_ids() -> None:
    assert all(re.fullmatch(COMMENT_ID_PATTERN, new_id()) for _ in range(100))


class _Sample(InputModel):
    name: str
    tags: list[str] = []
    extra: dict[str, Any] = {}


@pytest.mark.parametrize(
    "data",
    [
        {"name": "a\x00b"},
        {"name": "\ud800"},
        {"name": "ok", "tags": ["fine", "x\udfff"]},
        {"name": "ok", "extra": {"deep": [{"deeper": "\x00"}]}},
        {"name": "ok", "extra": {"\ud83d": 1}},
        {"name": "ok", "not_a_field": "\x00"},
    ],
)
def test_an_input_model_refuses_nul_and_lone_surrogates_anywhere(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as refused:
        _Sample.model_validate(data)
    assert refused.value.errors()[0]["type"] == "invalid_characters"


def test_an_input_model_takes_any_other_text() -> None:
    text = "é ü 中文 😀 \t\n \u2028 \x7f"
    assert _Sample.model_validate({"name": text, "tags": [text]}).name == text
