"""CHORUS_CORS_ORIGINS: origins as browsers send them, and anything else refused at startup."""

import pytest
from pydantic import ValidationError

from shared.origins import parse_origins
from shared.settings import Settings


def test_origins_are_brought_to_the_form_browsers_send() -> None:
    given = " https://News.Example.com, http://localhost:3000,,https://x.org:443, http://[::1]:8080"

    assert parse_origins(given) == (
        "https://news.example.com",
        "http://localhost:3000",
        "https://x.org",
        "http://[::1]:8080",
    )
    assert parse_origins("https://a.com,https://A.com:443") == ("https://a.com",)
    assert parse_origins("") == ()


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "null",
        "https://news.example.com/",
        "https://news.example.com/comments",
        "https://news.example.com?x=1",
        "https://news.example.com#top",
        "news.example.com",
        "ftp://news.example.com",
        "https://user@news.example.com",
        "https://news.example.com:99999",
        "https://news.example.com:0",
        "https://news_example.com",
        "https://",
    ],
)
def test_what_is_not_an_origin_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="CHORUS_CORS_ORIGINS") as refused:
        parse_origins(f"https://fine.example.com, {bad}")
    assert repr(bad) in str(refused.value)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_CORS_ORIGINS", "https://news.example.com, https://blog.example.com")
    assert Settings().cors_origins == ("https://news.example.com", "https://blog.example.com")

    monkeypatch.setenv("CHORUS_CORS_ORIGINS", "*")
    with pytest.raises(ValidationError, match="'\\*' is not allowed"):
        Settings()

    monkeypatch.delenv("CHORUS_CORS_ORIGINS")
    assert Settings().cors_origins == ()
