"""The workload Chorus and its peer are both given: one thread, N comments, some replies.

Deterministic for a seed, so both servers receive the same comments in the same order:
`REPLY_SHARE` of comments reply to a uniformly random earlier comment, the rest are
top-level. Authors rotate through `USERS` people; a third of bodies use markdown.
"""

import random
from dataclasses import dataclass

COMMENTS = 2_000
REPLY_SHARE = 0.3
USERS = 200
SEED = 1

PROSE = (
    "My grandfather was there in 1953 and never spoke of it.",
    "Thank you for writing this; it made me call my mother.",
    "I read the whole piece twice and still disagree with the second half.",
    "The numbers in the third paragraph do not match the chart, as far as I can tell.",
    "We tried exactly this in our town council and it went nowhere.",
)
MARKDOWN = (
    "A considered reply with *emphasis*, a [link](https://example.com) and `code`.",
    "> quoting the article\n\nI think **this** is the crux of it.",
)


@dataclass(frozen=True, slots=True)
class Planned:
    """One comment to post: `parent` is the index of an earlier comment, or None."""

    index: int
    parent: int | None
    author: str
    body: str


def plan(
    comments: int = COMMENTS, reply_share: float = REPLY_SHARE, seed: int = SEED
) -> list[Planned]:
    rng = random.Random(seed)
    planned: list[Planned] = []
    for index in range(comments):
        parent = rng.randrange(index) if index and rng.random() < reply_share else None
        pool = MARKDOWN if rng.random() < 1 / 3 else PROSE
        body = f"{rng.choice(pool)} (#{index})"
        planned.append(Planned(index, parent, f"reader-{rng.randrange(USERS)}", body))
    return planned
