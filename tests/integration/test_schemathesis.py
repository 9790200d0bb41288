"""Property-based contract test: whatever schemathesis sends, the API never answers 5xx.

The schema is the app's own OpenAPI document; every operation gets a bounded number of
generated requests (valid ones, and ones that break the schema), sent through the app on a
real database (SQLite and PostgreSQL, which refuses more: NUL in text, values over a column's
width) and a real Redis (rate limits off), authenticated as an ordinary user and as an admin.
Schemathesis draws strings from the schema; to keep the class of "text no column can hold"
closed, some cases get one string (in the body, the path or the query) replaced by a NUL, a
lone surrogate or an over-long value.
"""

import copy
import json
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from services.api.app import create_app
from shared.settings import Settings
from shared.tokens import mint_token
from tests.integration.conftest import JWT_SECRET

MAX_EXAMPLES = 25
BASE_URL = "http://testserver"
# Operations whose answer depends on processes outside the app (Prometheus scrapes), or
# never ends (a live stream: a valid request would hold the test; its refusals are tested
# in test_live.py).
SKIPPED = {("GET", "/metrics"), ("GET", "/v1/threads/{thread_id}/live")}
FUZZING = hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


# Strings no column can hold, or longer than the columns (ids are 40, thread ids 200).
POISONS = ["\x00", "a\x00b", "\ud800", "x\udfffy", "a" * 41, "t" * 201, "b" * 10_001]


def _strings(container: Any, where: str) -> list[tuple[Any, Any, str]]:
    """Every string slot (container, key) in nested dicts and lists, with where it goes."""
    found: list[tuple[Any, Any, str]] = []
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in items:
        if isinstance(value, str):
            found.append((container, key, where))
        elif isinstance(value, dict | list):
            found += _strings(value, where)
    return found


def _transport_kwargs(
    case: Any, headers: dict[str, str] | None, poison: str | None, slot: int
) -> dict[str, Any]:
    """What to send for `case`, with its `slot`-th string (path, query or body, modulo their
    number) replaced by `poison`.

    Poisoned after serialization: schemathesis re-validates a changed case, and its validator
    cannot take a lone surrogate. A path is formatted into the URL as given, so a NUL goes
    there percent-encoded; a URL carries UTF-8, which has no lone surrogates: NUL instead.
    """
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    if poison is None:
        return kwargs
    slots = _strings(case.path_parameters or {}, "path")
    for key, where in (("params", "query"), ("json", "body")):
        if isinstance(kwargs.get(key), dict | list):
            kwargs[key] = copy.deepcopy(kwargs[key])  # the case holds the same objects
            slots += _strings(kwargs[key], where)
    if not slots:
        return kwargs
    container, key, where = slots[slot % len(slots)]
    surrogate = any("\ud800" <= char <= "\udfff" for char in poison)
    if where == "body":
        container[key] = poison
    elif where == "query":
        container[key] = "\x00" if surrogate else poison
    else:
        container[key] = "%00" if surrogate or "\x00" in poison else poison
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    return kwargs


def _headers(roles: list[str] | None) -> dict[str, str]:
    token = mint_token(JWT_SECRET, sub="fuzz-user", name="Fuzz User", roles=roles)
    return {"Authorization": f"Bearer {token}"}


def _send(client: TestClient, kwargs: dict[str, Any]) -> Any:
    """Send requests-style keyword arguments (what schemathesis serializes) through httpx."""
    if "json" in kwargs:
        # Escaped as JSON allows (a lone surrogate as "\\ud800"), not as UTF-8, which cannot.
        kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Content-Type": "application/json"}
    data = kwargs.pop("data", None)
    if isinstance(data, str | bytes):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("timeout", None)
    if kwargs.get("cookies"):
        # No operation takes cookie parameters; httpx deprecates per-request cookies.
        raise AssertionError(f"unexpected cookies {kwargs['cookies']!r}")
    kwargs.pop("cookies", None)
    kwargs.pop("allow_redirects", None)
    return client.request(**kwargs)


@pytest.mark.redis
@pytest.mark.parametrize("roles", [None, ["admin", "moderator"]], ids=["user", "admin"])
def test_no_operation_answers_5xx(settings: Settings, roles: list[str] | None) -> None:
    app = create_app(settings)
    schema = schemathesis.openapi.from_dict(app.openapi())
    headers = _headers(roles)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    statuses: set[int] = set()
    with TestClient(app, raise_server_exceptions=False) as client:
        for operation in operations:
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue

            @FUZZING
            @given(
                case=st.one_of(
                    operation.as_strategy(GenerationMode.POSITIVE),
                    operation.as_strategy(GenerationMode.NEGATIVE),
                ),
                authenticated=st.booleans(),
                poison=st.none() | st.sampled_from(POISONS),
                slot=st.integers(min_value=0, max_value=20),
            )
            def check(case: Any, authenticated: bool, poison: str | None, slot: int) -> None:
                extra = headers if authenticated else None
                response = _send(client, _transport_kwargs(case, extra, poison, slot))
                statuses.add(response.status_code // 100)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                check()
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert {2, 4} <= statuses, statuses  # it both got through and was refused
