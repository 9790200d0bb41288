"""Every entry point that signs or checks tokens refuses a missing, public or short key.

Real processes, as an operator starts them: `chorus api`, `chorus worker`, `chorus token`
and uvicorn on the app factory directly (so the refusal cannot be stepped around).
"""

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from shared.jwt_secret import PUBLIC_SECRETS
from tests.e2e.conftest import CHORUS, answers, free_port

GOOD_SECRET = "e2e-secret-test-" + "0123456789abcdef" * 2
ENTRY_POINTS = {
    "chorus api": [*CHORUS, "api", "--port", "0"],
    "chorus worker": [*CHORUS, "worker", "--burst"],
    "chorus token": [*CHORUS, "token", "--sub", "ann", "--name", "Ann"],
    "uvicorn factory": [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "services.api.app:create_app",
        "--port",
        "0",
    ],
}
BAD_SECRETS = {
    "missing": (None, "CHORUS_JWT_SECRET is not set"),
    "empty": ("", "CHORUS_JWT_SECRET is not set"),
    "old development default": (
        "chorus-dev-secret-change-me-in-production",
        "CHORUS_JWT_SECRET is a published development key",
    ),
    "old compose placeholder": (
        "INSECURE-PLACEHOLDER-set-CHORUS_JWT_SECRET-before-deploying",
        "CHORUS_JWT_SECRET is a published development key",
    ),
    "31 bytes": ("x" * 31, "CHORUS_JWT_SECRET is too short: 31 bytes, at least 32"),
}


def environment(tmp_path: Path, secret: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env["CHORUS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'chorus.db'}"
    env["CHORUS_REDIS_URL"] = "redis://127.0.0.1:1/0"  # never reached: they stop before
    if secret is not None:
        env["CHORUS_JWT_SECRET"] = secret
    return {**env, **extra}


def test_the_published_keys_are_the_ones_refused() -> None:
    assert {secret for secret, _ in BAD_SECRETS.values()} >= PUBLIC_SECRETS


@pytest.mark.parametrize("case", BAD_SECRETS)
@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_an_entry_point_refuses_a_key_that_is_not_secret(
    entry_point: str, case: str, tmp_path: Path
) -> None:
    secret, problem = BAD_SECRETS[case]
    ran = subprocess.run(
        ENTRY_POINTS[entry_point],
        cwd=tmp_path,  # no `chorus dev` key here for `chorus token` to fall back on
        env=environment(tmp_path, secret),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ran.returncode != 0
    assert problem in ran.stderr
    assert "openssl rand -hex 32" in ran.stderr  # and how to make a good one
    assert ran.stdout == ""  # `chorus token` printed no token


def test_chorus_token_signs_with_a_good_key(tmp_path: Path) -> None:
    ran = subprocess.run(
        ENTRY_POINTS["chorus token"],
        cwd=tmp_path,
        env=environment(tmp_path, GOOD_SECRET),
        capture_output=True,
        text=True,
        check=True,
    )

    claims = jwt.decode(ran.stdout.strip(), GOOD_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["name"]) == ("ann", "Ann")
    assert ran.stderr == ""  # no word about a dev key when the real one is set


def test_chorus_worker_runs_with_a_good_key(tmp_path: Path, redis_url: str) -> None:
    env = environment(tmp_path, GOOD_SECRET, CHORUS_REDIS_URL=redis_url)
    subprocess.run([*CHORUS, "migrate"], env=env, check=True, capture_output=True)

    ran = subprocess.run(ENTRY_POINTS["chorus worker"], env=env, capture_output=True, timeout=60)

    assert ran.returncode == 0, ran.stderr.decode()


@pytest.mark.parametrize("entry_point", ["chorus api", "uvicorn factory"])
def test_the_api_serves_with_a_good_key(entry_point: str, tmp_path: Path) -> None:
    port = free_port()
    command = [*ENTRY_POINTS[entry_point][:-1], str(port)]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=environment(tmp_path, GOOD_SECRET),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert answers(f"http://127.0.0.1:{port}/healthz", process, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_chorus_dev_refuses_a_short_key_given_to_it(tmp_path: Path) -> None:
    ran = subprocess.run(
        [*CHORUS, "dev", "--port", str(free_port())],
        cwd=tmp_path,
        env=environment(tmp_path, "short"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ran.returncode != 0
    assert "CHORUS_JWT_SECRET is too short" in ran.stderr
