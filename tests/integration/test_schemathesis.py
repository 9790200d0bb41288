"""Property-based contract test: whatever schemathesis sends, the API never answers 5xx.

The schema is the app's own OpenAPI document; every operation gets a bounded number of
generated requests (valid and invalid ones), sent through the app on a real SQLite database
and a real Redis (rate limits off), authenticated as an ordinary user and as an admin.
"""

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from services.api.app import create_app
from shared.settings import Settings
from shared.tokens import mint_token
from tests.integration.conftest import JWT_SECRET

MAX_EXAMPLES = 25
BASE_URL = "http://testserver"
# Operations whose answer depends on processes outside the app (Prometheus scrapes).
SKIPPED = {("GET", "/metrics")}
FUZZING = hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _headers(roles: list[str] | None) -> dict[str, str]:
    token = mint_token(JWT_SECRET, sub="fuzz-user", name="Fuzz User", roles=roles)
    return {"Authorization": f"Bearer {token}"}


def _send(client: TestClient, kwargs: dict[str, Any]) -> Any:
    """Send requests-style keyword arguments (what schemathesis serializes) through httpx."""
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
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
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
            @given(case=operation.as_strategy(), authenticated=st.booleans())
            def check(case: Any, authenticated: bool) -> None:
                extra = headers if authenticated else None
                kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=extra)
                response = _send(client, kwargs)
                statuses.add(response.status_code // 100)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                check()
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert {2, 4} <= statuses, statuses  # it both got through and was refused
