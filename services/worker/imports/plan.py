"""One source thread, made importable: its comments in an order Chorus can append.

Chorus appends a reply after its parent, and a reply may sit no deeper than
`MAX_DEPTH - 1`. Sources promise neither, so before anything is written each thread is
planned in memory (a thread is small; a file is streamed thread by thread):

- comments are taken oldest first, a reply never before its parent (a heap of the
  comments whose parent is already placed, keyed by when they were written, then file
  order);
- a reply whose parent is not in the thread (never exported, or skipped as spam) becomes
  a top-level comment, counted as `parents_missing`;
- a reply nested deeper than Chorus allows is attached to its ancestor at the deepest
  level allowed, counted as `flattened`;
- a reply cycle (A answers B answers A) cannot be placed at all: the thread is refused
  whole (`PlanRefused`), since a thread is imported whole or not at all;
- a second comment with a key already seen is skipped (`duplicate key`).
"""

import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.worker.imports import ids
from services.worker.imports.model import SkippedComment, SourceComment, SourceThread
from shared.handlers import MAX_DEPTH
from shared.validation import MAX_TITLE_CHARS, clean_url

MAX_NAME_CHARS = 200


@dataclass(frozen=True, slots=True)
class PlannedComment:
    source: SourceComment
    comment_id: str
    parent_id: str | None
    depth: int


@dataclass
class ThreadPlan:
    key: str
    thread_id: str
    id_from: ids.ThreadIdFrom
    title: str | None
    url: str | None
    comments: list[PlannedComment]
    skipped: list[SkippedComment] = field(default_factory=list)
    locked: bool = False
    created_at: datetime | None = None
    """When the thread began: the source's date for it or its oldest comment's, whichever is
    earlier (a source may date a thread when it first saw it, after older comments)."""
    parents_missing: int = 0
    flattened: int = 0


class PlanRefused(Exception):
    """The thread cannot be imported as it is (the reason goes in the report)."""


def plan_thread(source: str, thread: SourceThread) -> ThreadPlan:
    thread_id, id_from = ids.thread_id(source, thread)
    plan = ThreadPlan(
        key=thread.key,
        thread_id=thread_id,
        id_from=id_from,
        title=_title(thread.title),
        url=_url(thread.url),
        comments=[],
        skipped=list(thread.skipped),
        locked=thread.locked,
        created_at=_began(thread),
    )
    by_key: dict[str, tuple[int, SourceComment]] = {}
    for index, comment in enumerate(thread.comments):
        if comment.key in by_key:
            plan.skipped.append(SkippedComment(comment.key, "duplicate key"))
        else:
            by_key[comment.key] = (index, comment)
    parent_of: dict[str, str | None] = {}
    for key, (_, comment) in by_key.items():
        parent = comment.parent_key
        if parent is not None and (parent not in by_key or parent == key):
            plan.parents_missing += 1
            parent = None
        parent_of[key] = parent
    _refuse_cycles(parent_of)
    _place(source, plan, by_key, parent_of)
    return plan


def _began(thread: SourceThread) -> datetime | None:
    moments = [c.posted_at for c in thread.comments]
    if thread.created_at is not None:
        moments.append(thread.created_at)
    aware = [m if m.tzinfo is not None else m.replace(tzinfo=UTC) for m in moments]
    return min(aware, default=None)


def _refuse_cycles(parent_of: dict[str, str | None]) -> None:
    """Raise `PlanRefused` if following parents from any comment comes back to it."""
    settled: set[str] = set()  # known to reach a top-level comment
    for start in parent_of:
        path: list[str] = []
        on_path: set[str] = set()
        key: str | None = start
        while key is not None and key not in settled:
            if key in on_path:
                raise PlanRefused(f"reply cycle through comment {key!r}")
            on_path.add(key)
            path.append(key)
            key = parent_of[key]
        settled.update(path)


def _place(
    source: str,
    plan: ThreadPlan,
    by_key: dict[str, tuple[int, SourceComment]],
    parent_of: dict[str, str | None],
) -> None:
    children: dict[str, list[str]] = {}
    ready: list[tuple[float, int, str]] = []
    for key, (index, comment) in by_key.items():
        parent = parent_of[key]
        if parent is None:
            ready.append((comment.posted_at.timestamp(), index, key))
        else:
            children.setdefault(parent, []).append(key)
    heapq.heapify(ready)
    placed: dict[str, PlannedComment] = {}
    # The ancestors of each placed comment, root first, to attach too-deep replies.
    chains: dict[str, tuple[str, ...]] = {}
    while ready:
        _, index, key = heapq.heappop(ready)
        comment = by_key[key][1]
        parent = parent_of[key]
        chain: tuple[str, ...] = ()
        parent_id = None
        if parent is not None:
            chain = (*chains[parent], placed[parent].comment_id)
            if len(chain) >= MAX_DEPTH:
                chain = chain[: MAX_DEPTH - 1]
                plan.flattened += 1
            parent_id = chain[-1]
        planned = PlannedComment(comment, ids.comment_id(source, comment), parent_id, len(chain))
        placed[key], chains[key] = planned, chain
        plan.comments.append(planned)
        for child in children.get(key, ()):
            child_index, child_comment = by_key[child]
            heapq.heappush(ready, (child_comment.posted_at.timestamp(), child_index, child))


def _title(title: str | None) -> str | None:
    if title is None:
        return None
    return clean_text(title).strip()[:MAX_TITLE_CHARS] or None


def _url(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return clean_url(clean_text(url).strip())
    except Exception:
        return None  # not an http(s) URL Chorus keeps: the thread is found by its id only


def clean_text(text: str) -> str:
    """Without what no column can hold: NUL, lone surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
