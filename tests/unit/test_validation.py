import pytest

from shared.errors import InvalidInput
from shared.validation import check_thread_id, clean_body, clean_url


def test_bodies_are_trimmed_and_bounded_after_trimming() -> None:
    assert clean_body("  hi \n", 10) == "hi"
    assert clean_body(" " + "x" * 10 + " ", 10) == "x" * 10
    with pytest.raises(InvalidInput, match="11 characters"):
        clean_body("x" * 11, 10)


@pytest.mark.parametrize("body", ["", "   ", "\n\t", "a\x00b"])
def test_empty_or_nul_bodies_are_refused(body: str) -> None:
    with pytest.raises(InvalidInput):
        clean_body(body, 100)


@pytest.mark.parametrize("thread_id", ["a", "post-1", "news.example:2026_11", "A" * 200])
def test_thread_ids_of_the_allowed_alphabet_pass(thread_id: str) -> None:
    assert check_thread_id(thread_id) == thread_id


@pytest.mark.parametrize("thread_id", ["", "a b", "a/b", "A" * 201, "ü", "a\x00"])
def test_other_thread_ids_are_refused(thread_id: str) -> None:
    with pytest.raises(InvalidInput):
        check_thread_id(thread_id)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://x", "https://a b", "data:text/html,x"]
)
def test_thread_urls_must_be_http(url: str) -> None:
    with pytest.raises(InvalidInput):
        clean_url(url)
