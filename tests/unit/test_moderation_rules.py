"""The word, link and hold rules, without a database."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from linkify_it import LinkifyIt

from shared.errors import InvalidInput
from shared.moderation_rules import (
    AuthorFacts,
    count_links,
    judge_edit,
    judge_post,
    matcher,
)
from shared.moderation_settings import MAX_WORDS, clean_words
from shared.results import ModerationSettings


def find(words: list[str], text: str) -> str | None:
    return matcher(tuple(words)).find(text)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Scunthorpe United won", None),  # a listed word inside a longer one never counts
        ("a class act", None),
        ("assassin", None),
        ("you ass", "ass"),
        ("ASS!", "ass"),
        ("(ass)", "ass"),
        ("ass-hat", "ass"),  # a hyphen is no letter: the word stands whole before it
        ("ass_hat", None),  # an underscore is a word character
        ("ass2", None),
        ('"ass".', "ass"),
        ("", None),
    ],
)
def test_words_match_whole_not_inside_longer_words(text: str, found: str | None) -> None:
    assert find(["ass"], text) == found


@pytest.mark.parametrize(
    ("words", "text"),
    [
        (["Straße"], "STRASSE"),
        (["STRASSE"], "die straße"),
        (["café"], "CAFÉ"),
        (["café"], "cafe\u0301"),  # an accent typed as a combining mark
        (["cafe\u0301"], "café"),
        (["\ufb01ne"], "fine"),  # a ligature
        (["spam"], "\uff53\uff50\uff41\uff4d"),  # full-width letters
        (["ΣΟΦΙΑ"], "σοφια"),
    ],
)
def test_words_match_whatever_their_case_and_unicode_form(words: list[str], text: str) -> None:
    assert find(words, text) == words[0]


def test_an_accented_word_is_not_its_unaccented_cousin() -> None:
    assert find(["café"], "cafe") is None
    assert find(["über"], "uber") is None


def test_an_accented_letter_is_a_letter_at_a_word_boundary() -> None:
    assert find(["ber"], "über") is None  # "ü" is a word character: no match inside


def test_phrases_and_words_with_punctuation_match_too() -> None:
    assert find(["buy now"], "Please BUY NOW!") == "buy now"
    assert find(["$$$"], "earn $$$ fast") == "$$$"
    assert find(["c++"], "I like C++.") == "c++"
    assert find(["a.b"], "aXb") is None  # listed words are text, not patterns


def test_the_list_spelling_is_reported_and_the_first_of_equals_wins() -> None:
    assert find(["Casino", "CASINO"], "casino night") == "Casino"


def test_each_list_is_compiled_once() -> None:
    assert matcher(("one", "two")) is matcher(("one", "two"))
    assert matcher(()).find("anything") is None


@pytest.mark.parametrize(
    ("body", "links"),
    [
        ("no links here", 0),
        ("see https://example.com and http://b.example/x?y=1", 2),
        ("[a link](https://example.com/p) and www.example.org", 2),
        ("mail me: ann@example.com", 1),
        ("example.com", 1),  # a bare domain becomes a link when rendered
        ("version 1.2.3 and e.g. this", 0),
    ],
)
def test_links_are_counted_as_the_renderer_makes_them(body: str, links: int) -> None:
    assert count_links(body) == links


SITE = ModerationSettings(
    banned_words=("slur",), suspect_words=("casino",), max_links=1, flag_threshold=3
)
READER = AuthorFacts()
STAFF = AuthorFacts(staff=True)


def test_a_plain_comment_is_published() -> None:
    verdict = judge_post(SITE, None, READER, "a fine comment")
    assert (verdict.banned_word, verdict.held_for, verdict.status) == (None, (), "published")


def test_a_banned_word_refuses_anyone_staff_included() -> None:
    assert judge_post(SITE, None, READER, "you SLUR").banned_word == "slur"
    assert judge_post(SITE, None, STAFF, "you slur").banned_word == "slur"
    assert judge_edit(SITE, True, "slur").banned_word == "slur"


def test_every_reason_that_applies_is_listed_in_order() -> None:
    body = "casino https://a.example https://b.example"
    premod = AuthorFacts(premod=True)
    pre = judge_post(SITE, "pre", premod, body)
    assert pre.held_for == ("pre_moderation", "user_premod", "suspect_word", "too_many_links")
    assert pre.status == "pending"
    first = judge_post(SITE, "first_comments", premod, body)
    assert first.held_for == ("first_comment", "user_premod", "suspect_word", "too_many_links")


def test_the_threads_mode_wins_over_the_sites() -> None:
    site_pre = ModerationSettings(mode="pre")
    assert judge_post(site_pre, None, READER, "hi").held_for == ("pre_moderation",)
    assert judge_post(site_pre, "post", READER, "hi").held_for == ()
    assert judge_post(ModerationSettings(), "pre", READER, "hi").held_for == ("pre_moderation",)


def test_first_comments_holds_only_authors_never_approved() -> None:
    mode = ModerationSettings(mode="first_comments")
    assert judge_post(mode, None, READER, "hi").held_for == ("first_comment",)
    assert judge_post(mode, None, AuthorFacts(trusted=True), "hi").held_for == ()


def test_staff_are_never_held() -> None:
    held = "casino https://a.example https://b.example"
    assert judge_post(SITE, "pre", AuthorFacts(staff=True, premod=True), held).held_for == ()
    assert judge_edit(SITE, True, held).held_for == ()


def test_no_link_limit_by_default_and_the_limit_itself_is_allowed() -> None:
    links = " ".join(f"https://{n}.example" for n in range(20))
    assert judge_post(ModerationSettings(), None, READER, links).held_for == ()
    assert judge_post(SITE, None, READER, "https://a.example").held_for == ()


def test_an_edit_is_held_only_for_what_its_text_brings() -> None:
    pre = ModerationSettings(mode="pre", suspect_words=("casino",))
    assert judge_edit(pre, False, "plain").held_for == ()
    assert judge_edit(pre, False, "casino").held_for == ("suspect_word",)


def test_word_lists_are_trimmed_deduplicated_and_bounded() -> None:
    assert clean_words([" Straße ", "STRASSE", "spam", "SPAM"], "w") == ("Straße", "spam")
    for bad in ([""], ["   "], ["x" * 65], ["a\x00b"], ["a\nb"], ["\ud800"]):
        with pytest.raises(InvalidInput) as refused:
            clean_words(bad, "w")
        assert refused.value.code == "invalid_settings"
    assert len(clean_words([f"w{n}" for n in range(MAX_WORDS)], "w")) == MAX_WORDS
    with pytest.raises(InvalidInput):
        clean_words([f"w{n}" for n in range(MAX_WORDS + 1)], "w")


LINKISH_WORDS = ["see", "example", "com", "www", "http", "https", "mailto", "a", "1", "рф"]
LINKISH_MARKS = [".", ":", "@", "/", "//", " ", ". ", ", ", "\n", "(", ")", "[", "]"]


@given(st.lists(st.sampled_from(LINKISH_WORDS + LINKISH_MARKS), max_size=30).map("".join))
def test_the_quick_check_never_misses_a_link_linkify_would_find(text: str) -> None:
    assert count_links(text) == len(LinkifyIt().match(text) or ())
