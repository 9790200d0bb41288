"""The deployable stack (compose.yaml, deploy/Caddyfile, Dockerfile) has the shape we promise.

No Docker engine runs in the tests: these read the files. tests/e2e/test_topology.py runs
the same topology (several APIs, several workers, one database, Redis, SMTP) as processes.
"""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.jwt_secret import PUBLIC_SECRETS
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHORUS_ROLES = ("migrate", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


class MissingVariable(Exception):
    """What `docker compose` stops with for a `${VAR:?message}` whose VAR is unset or empty."""


# What an operator exports before `docker compose up` (README, Deploying).
DEPLOY_ENV = {"CHORUS_JWT_SECRET": "0123456789abcdef" * 4}


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` in the given environment."""
    env = env or {}

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":?":
            if not env.get(name):
                raise MissingVariable(f"required variable {name} is missing a value: {argument}")
            return env[name]
        return env.get(name) or argument

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", replace, value)


def environment(service: dict[str, Any], env: dict[str, str] = DEPLOY_ENV) -> dict[str, str]:
    values = service.get("environment", {})
    assert isinstance(values, dict), "environment as a mapping"
    return {key: interpolate(str(value), env) for key, value in values.items()}


def published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host port, container port) of every published port, with defaults filled in."""
    pairs = []
    for port in service.get("ports", []):
        host, _, container = interpolate(str(port)).rpartition(":")
        pairs.append((host, container))
    return pairs


def test_the_stack_has_every_role(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "postgres",
        "redis",
        "mailpit",
        "migrate",
        "api",
        "worker",
        "proxy",
    }
    for role in CHORUS_ROLES:
        assert services[role]["build"] == "."
        assert services[role]["command"][:2] == ["chorus", role]


def test_services_start_in_order_and_only_when_ready(services: dict[str, dict[str, Any]]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"postgres": "service_healthy"}
    for role in ("api", "worker"):
        assert conditions(role)["migrate"] == "service_completed_successfully"
        assert conditions(role)["redis"] == "service_healthy"
    assert conditions("worker")["mailpit"] == "service_healthy"
    assert conditions("proxy") == {"api": "service_healthy"}
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"


def test_long_running_services_have_health_checks_and_restart(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("postgres", "redis", "mailpit", "api", "proxy"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    for name in ("postgres", "redis", "mailpit", "api", "worker", "proxy"):
        assert services[name]["restart"] == "unless-stopped", name
    assert services["migrate"]["restart"] == "no"  # one-shot: it must be allowed to finish


def test_api_and_worker_scale_behind_one_published_port(
    services: dict[str, dict[str, Any]],
) -> None:
    # `--scale api=3 --scale worker=4` needs no fixed host port and no container name.
    for role in ("api", "worker"):
        assert "ports" not in services[role], role
        assert "container_name" not in services[role], role
    assert services["api"]["expose"] == ["8000"]
    assert published(services["proxy"]) == [("8000", "80")]
    assert published(services["mailpit"]) == [("8025", "8025")]  # web inbox only, not SMTP
    for name in ("postgres", "redis", "migrate"):
        assert "ports" not in services[name], name


def test_the_proxy_balances_over_every_api_replica(services: dict[str, dict[str, Any]]) -> None:
    assert services["proxy"]["image"].startswith("caddy:")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    # A dynamic A-record upstream: each replica behind the name `api` is its own upstream.
    assert re.search(r"dynamic a \{\s+name api\s+port 8000\b", caddyfile)
    assert "lb_policy" in caddyfile
    # The api trusts the proxy's X-Forwarded-For, so it sees (and limits) real clients.
    assert environment(services["api"])["FORWARDED_ALLOW_IPS"] == "*"


def test_the_proxy_never_forwards_metrics(services: dict[str, dict[str, Any]]) -> None:
    # tests/e2e/test_proxy.py runs this file in a real Caddy; this reads it, for machines
    # without one.
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    public_site = caddyfile[caddyfile.index(":80 {") : caddyfile.index(":8081 {")]
    matcher = re.search(r"^\s*@(\w+) path (.+)$", public_site, re.MULTILINE)
    assert matcher, "a named path matcher in the public site"
    name, paths = matcher.group(1), matcher.group(2).split()
    assert {"/metrics", "/metrics/*"} <= set(paths)
    assert re.search(rf"^\s*respond @{name} .* 404$", public_site, re.MULTILINE)
    assert "8081" not in str(services["proxy"]["ports"])  # the proxy's health site stays in


def test_every_chorus_role_gets_the_same_working_configuration(
    services: dict[str, dict[str, Any]],
) -> None:
    envs = {role: environment(services[role]) for role in CHORUS_ROLES}
    shared = envs["worker"]
    for role in CHORUS_ROLES:
        assert {k: v for k, v in envs[role].items() if k.startswith("CHORUS_")} == shared
    known = {f"CHORUS_{name.upper()}" for name in Settings.model_fields}
    assert set(shared) <= known, "a typo in a setting name is silently ignored"
    assert shared["CHORUS_DATABASE_URL"].startswith("postgresql+psycopg://chorus:")
    assert shared["CHORUS_DATABASE_URL"].endswith("@postgres:5432/chorus")
    assert shared["CHORUS_REDIS_URL"] == "redis://redis:6379/0"
    assert shared["CHORUS_SMTP_URL"] == "smtp://mailpit:1025"
    assert shared["CHORUS_METRICS_TOKEN"] == ""  # unset: private peers only
    with_token = environment(services["api"], {**DEPLOY_ENV, "CHORUS_METRICS_TOKEN": "t0k"})
    assert with_token["CHORUS_METRICS_TOKEN"] == "t0k"
    # Unsubscribe links must point at the proxy, the only address readers can reach.
    proxy_port = published(services["proxy"])[0][0]
    assert shared["CHORUS_PUBLIC_URL"] == f"http://localhost:{proxy_port}"


def test_the_jwt_secret_must_be_given_and_has_no_fallback(
    services: dict[str, dict[str, Any]],
) -> None:
    text = (ROOT / "compose.yaml").read_text()
    for role in CHORUS_ROLES:
        raw = services[role]["environment"]["CHORUS_JWT_SECRET"]
        assert raw.startswith("${CHORUS_JWT_SECRET:?"), role  # unset or empty: compose stops
        for unset in ({}, {"CHORUS_JWT_SECRET": ""}):
            with pytest.raises(MissingVariable, match=r"CHORUS_JWT_SECRET.*openssl rand -hex 32"):
                interpolate(raw, unset)
        assert interpolate(raw, DEPLOY_ENV) == DEPLOY_ENV["CHORUS_JWT_SECRET"]
    for published_key in PUBLIC_SECRETS:
        assert published_key not in text
    assert "INSECURE" not in text


def test_every_dollar_in_compose_yaml_is_a_variable_compose_can_read() -> None:
    # A lone `$` (say, `$(openssl ...)` in an error message) fails `docker compose up`.
    values = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, str):
            values.append(node)

    walk(yaml.safe_load((ROOT / "compose.yaml").read_text()))
    variable = r"\$\$|\$\{\w+(?:(?::?[-?+])[^}$]*)?\}|\$\w+"
    for value in values:
        assert "$" not in re.sub(variable, "", value), value


def test_the_image_is_multi_stage_non_root_and_serves_on_8000() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert len(stages) == 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    runtime = dockerfile.split("\nFROM ")[-1]
    assert "build-essential" not in runtime
    assert re.search(r"^USER\s+(?!root|0\b)\S+", runtime, re.MULTILINE)
    assert re.search(r"^EXPOSE\s+8000$", runtime, re.MULTILINE)
    assert 'CMD ["chorus", "api", "--host", "0.0.0.0", "--port", "8000"]' in runtime
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "tests"} <= ignored
