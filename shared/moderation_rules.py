"""What a comment's text and its author decide: refused, held (and why), or published.

Pure functions of the settings, the thread's mode, a few facts about the author and the
body, so the command handlers stay small and the rules are tested without a database.

Words are matched whole (`(?<!\\w)(?:w1|w2)(?!\\w)`), so "ass" never matches "class"
(the Scunthorpe problem), on NFKC-normalized, casefolded text on both sides: "STRASSE"
matches "Straße", a ligature or a full-width letter matches its plain form, and an accent
typed as a combining mark matches the precomposed one. Each word list is compiled once
and cached: the same settings serve every post until they change.

Links are counted as the renderer finds them (linkify-it-py, which markdown-it's linkify
uses): bare URLs, `www.` and bare domains, markdown link targets, email addresses.
"""

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass

from linkify_it import LinkifyIt

from shared.events import HoldReason
from shared.results import ModerationSettings

STAFF_ROLES = frozenset({"moderator", "admin", "staff"})


@dataclass(frozen=True, slots=True)
class AuthorFacts:
    """What the write side knows of the person posting, read in one statement."""

    staff: bool = False  # a moderator, admin or staff role in their token: never held
    premod: bool = False  # put on pre-moderation by a moderator
    trusted: bool = False  # one of their comments was approved


@dataclass(frozen=True, slots=True)
class Verdict:
    """A banned word (the comment is refused), or why it is held (empty: published)."""

    banned_word: str | None = None
    held_for: tuple[HoldReason, ...] = ()

    @property
    def status(self) -> str:
        return "pending" if self.held_for else "published"


def normalize(text: str) -> str:
    """The form both words and bodies are compared in."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True, slots=True)
class WordMatcher:
    """One word list, compiled: finds the first listed word standing whole in a text."""

    pattern: re.Pattern[str] | None
    originals: dict[str, str]  # normalized form -> the word as the list spells it

    def find(self, text: str) -> str | None:
        if self.pattern is None:
            return None
        found = self.pattern.search(normalize(text))
        return None if found is None else self.originals.get(found.group(1), found.group(1))


@functools.lru_cache(maxsize=16)
def matcher(words: tuple[str, ...]) -> WordMatcher:
    """The compiled matcher for a word list (cached: lists change rarely)."""
    originals: dict[str, str] = {}
    for word in words:
        originals.setdefault(normalize(word), word)
    if not originals:
        return WordMatcher(None, {})
    # Longest first, so a phrase wins over a word it starts with.
    alternatives = "|".join(re.escape(w) for w in sorted(originals, key=len, reverse=True))
    return WordMatcher(re.compile(rf"(?<!\w)({alternatives})(?!\w)"), originals)


_linkify = threading.local()
# Every link linkify finds has a dot, colon or at sign glued to a word character, or "//":
# text without one has none, and skips the full search (~300 µs for a short comment,
# paid on the committer's thread; this check costs a microsecond).
_MAYBE_A_LINK = re.compile(r"[.:@]\w|//")


def count_links(body: str) -> int:
    """How many links the rendered body would carry."""
    if _MAYBE_A_LINK.search(body) is None:
        return 0
    finder: LinkifyIt | None = getattr(_linkify, "finder", None)
    if finder is None:  # LinkifyIt keeps match state on itself: one per thread
        finder = _linkify.finder = LinkifyIt()
    return len(finder.match(body) or ())


def judge_post(
    settings: ModerationSettings, thread_mode: str | None, author: AuthorFacts, body: str
) -> Verdict:
    """A new comment: refused for a banned word (anyone), else held for every reason
    that applies, in the order of `HoldReason` (never for staff), else published."""
    banned = matcher(settings.banned_words).find(body)
    if banned is not None:
        return Verdict(banned_word=banned)
    if author.staff:
        return Verdict()
    mode = thread_mode or settings.mode
    held: list[HoldReason] = []
    if mode == "pre":
        held.append("pre_moderation")
    if mode == "first_comments" and not author.trusted:
        held.append("first_comment")
    if author.premod:
        held.append("user_premod")
    held.extend(_text_reasons(settings, body))
    return Verdict(held_for=tuple(held))


def judge_edit(settings: ModerationSettings, staff: bool, body: str) -> Verdict:
    """An edit: refused for a banned word; held (if it was published) for what the new
    text alone brings, a suspect word or too many links. The mode and the author's
    standing were judged when it was posted."""
    banned = matcher(settings.banned_words).find(body)
    if banned is not None:
        return Verdict(banned_word=banned)
    if staff:
        return Verdict()
    return Verdict(held_for=_text_reasons(settings, body))


def _text_reasons(settings: ModerationSettings, body: str) -> tuple[HoldReason, ...]:
    held: list[HoldReason] = []
    if matcher(settings.suspect_words).find(body) is not None:
        held.append("suspect_word")
    if settings.max_links is not None and count_links(body) > settings.max_links:
        held.append("too_many_links")
    return tuple(held)
