"""The JWT key checks, and `chorus dev`'s own key (tests/e2e/test_jwt_secret.py runs the
entry points as processes)."""

import stat
from pathlib import Path

import pytest

from services.api.app import create_app
from shared.jwt_secret import (
    DEV_SECRET_FILE,
    MIN_SECRET_BYTES,
    PUBLIC_SECRETS,
    InsecureSecret,
    dev_secret,
    require_secret,
)
from shared.settings import Settings


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "is not set"),
        *((public, "is a published development key") for public in sorted(PUBLIC_SECRETS)),
        ("k" * (MIN_SECRET_BYTES - 1), "is too short: 31 bytes"),
        # Bytes, not characters: 16 two-byte characters are 32 bytes, 10 are 20.
        ("é" * 10, "is too short: 20 bytes"),
    ],
)
def test_the_app_factory_refuses_a_key_that_is_not_secret(secret: str, problem: str) -> None:
    with pytest.raises(InsecureSecret, match=problem):
        create_app(Settings(database_url="sqlite://", jwt_secret=secret))


def test_a_long_enough_key_is_accepted() -> None:
    assert require_secret("é" * 16) == "é" * 16
    assert require_secret("k" * MIN_SECRET_BYTES) == "k" * MIN_SECRET_BYTES


def test_the_settings_have_no_key_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHORUS_JWT_SECRET", raising=False)
    assert Settings().jwt_secret == ""


def test_chorus_dev_makes_its_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    data_dir = tmp_path / ".chorus"

    first = dev_secret(data_dir)
    again = dev_secret(data_dir)

    assert first == again
    require_secret(first)
    assert dev_secret(tmp_path / "elsewhere") != first  # random, not shipped
    mode = stat.S_IMODE((data_dir / DEV_SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == [DEV_SECRET_FILE]  # no draft left


def test_a_dev_key_file_edited_to_a_short_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / DEV_SECRET_FILE).write_text("short\n")

    with pytest.raises(InsecureSecret, match=r"jwt-secret: the key is too short"):
        dev_secret(tmp_path)
