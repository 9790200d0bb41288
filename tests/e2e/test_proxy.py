"""The shipped proxy (deploy/Caddyfile) in front of a real API: /metrics stays inside.

Debian's `caddy` runs the very file compose mounts, with only its addresses changed: the
site on a free port instead of :80, and the upstream name `localhost` on the API's port
instead of compose's `api:8000`.
"""

import http.client
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CHORUS, JWT_SECRET, answers, free_port, running_api

CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "Caddyfile"
# Ways to spell the path that the API serves as /metrics, or redirects to it, or that a
# careless matcher would let through.
METRICS_SPELLINGS = [
    "/metrics",
    "/metrics?format=text",
    "/metrics/",
    "/METRICS",
    "/Metrics",
    "/%6Detrics",
    "/%6detrics",
    "/metrics%2F",
    "//metrics",
    "/./metrics",
    "/v1/../metrics",
]


@pytest.fixture
def caddy() -> str:
    binary = shutil.which("caddy")
    if binary is None:
        if os.environ.get("CHORUS_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("caddy is missing (apt-get install caddy)", pytrace=False)
        pytest.skip("caddy is missing: apt-get install caddy to run the proxy test")
    return binary


def local_caddyfile(api_port: int, proxy_port: int, health_port: int) -> str:
    text = CADDYFILE.read_text()
    for compose_value, local_value in (
        (":80 {", f":{proxy_port} {{"),
        (":8081 {", f":{health_port} {{"),
        ("name api\n", "name localhost\n"),
        ("port 8000\n", f"port {api_port}\n"),
    ):
        assert text.count(compose_value) == 1, f"deploy/Caddyfile changed shape: {compose_value}"
        text = text.replace(compose_value, local_value)
    return text


@pytest.fixture
def stack(caddy: str, tmp_path: Path, redis_url: str) -> Iterator[tuple[str, str]]:
    """(proxy URL, API URL): a migrated SQLite, a real Redis, `chorus api`, Caddy."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")},
        "CHORUS_DATABASE_URL": f"sqlite:///{tmp_path / 'chorus.db'}",
        "CHORUS_REDIS_URL": redis_url,
        "CHORUS_JWT_SECRET": JWT_SECRET,
        # Caddy keeps its state under these: a private folder, not the machine's.
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }
    subprocess.run([*CHORUS, "migrate"], env=env, check=True, capture_output=True)
    api_port, proxy_port, health_port = free_port(), free_port(), free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(local_caddyfile(api_port, proxy_port, health_port))
    with running_api(env, api_port) as api, (tmp_path / "caddy.log").open("wb") as log:
        proxy = subprocess.Popen(
            [caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{proxy_port}"
            if not answers(f"{base}/healthz", proxy, timeout=30):
                pytest.fail(f"caddy did not proxy:\n{(tmp_path / 'caddy.log').read_text()}")
            yield base, api
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)


def raw_get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET `path` exactly as written (httpx would normalize dots and escapes away)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def test_the_proxy_answers_metrics_itself_and_forwards_the_rest(
    stack: tuple[str, str],
) -> None:
    proxy, api = stack

    through_proxy = {path: raw_get(proxy, path) for path in METRICS_SPELLINGS}
    api_itself = httpx.get(f"{api}/metrics")
    followed = httpx.get(f"{proxy}/metrics/", follow_redirects=True)
    forwarded = httpx.get(f"{proxy}/v1/threads/no-such-thread")

    leaked = {path: status for path, (status, body) in through_proxy.items() if "chorus_" in body}
    assert leaked == {}, "the proxy forwarded /metrics"
    assert all(status >= 400 for status, _ in through_proxy.values()), through_proxy
    status, body = through_proxy["/metrics"]
    assert (status, httpx.Response(404, content=body).json()["error"]["code"]) == (
        404,
        "not_found",
    )
    assert "chorus_" not in followed.text
    # The API itself serves a scraper on its own machine; the proxy is what keeps it inside.
    assert api_itself.status_code == 200
    assert "chorus_http_request_duration_seconds" in api_itself.text
    assert forwarded.status_code == 404
    assert forwarded.json()["error"]["code"] == "not_found"
    assert "x-request-id" in forwarded.headers  # it was the API that answered


def test_a_proxied_public_client_is_not_a_private_peer(stack: tuple[str, str]) -> None:
    _, api = stack

    # uvicorn trusts X-Forwarded-For from 127.0.0.1 (its FORWARDED_ALLOW_IPS default), as
    # the API in compose trusts the proxy: the peer it reports is the original client.
    status, body = raw_get(api, "/metrics", {"X-Forwarded-For": "8.8.8.8"})
    private_status, _ = raw_get(api, "/metrics", {"X-Forwarded-For": "10.0.0.9"})

    assert status == 403
    assert "chorus_" not in body
    assert private_status == 200
