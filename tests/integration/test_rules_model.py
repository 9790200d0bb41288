"""The rules, as a small in-memory model, against the real command bus.

Hypothesis drives random sequences of commands (register, lock and unlock threads and set
their moderation mode; post, reply, edit, delete, like and unlike comments; flag, approve,
reject and feature them; ban and unban users and put them on pre-moderation; retry a post
with its `Idempotency-Key`) through `CommandBus` on SQLite and PostgreSQL, as four people:
two readers, a moderator and an admin. The model says, for each command, whether it is
accepted and how many events it appends, or which refusals would be right (where several
rules refuse one command, the contract does not say which one wins: any of them will do).

After every step the write-side index (`thread_state`, `comment_state`, `comment_likes`,
`banned_users`, `premod_users`) must equal the model; at the end of each example the
thread projection, folded in-process (also between steps, when hypothesis chooses to),
must show the model's comments with their status, flags, reply, descendant and like
counts, counting published comments only.

Every example uses its own thread and user ids, so examples share the database but not
state.
"""

import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Engine

from services.worker.folding import fold_thread
from shared.command_bus import CommandBus
from shared.commands import (
    FOLLOW_SITE,
    Actor,
    ApproveComment,
    BanUser,
    ChangeModerationSettings,
    Command,
    DeleteComment,
    EditComment,
    FeatureComment,
    FlagComment,
    LikeComment,
    LockThread,
    PostComment,
    RegisterThread,
    RejectComment,
    RequestContext,
    SetPremod,
    UnbanUser,
    UnlikeComment,
)
from shared.errors import (
    ChorusError,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
)
from shared.moderation_tables import banned_users, premod_users
from shared.projection_tables import LIVE
from shared.results import BanState, NewComment, SavedThread
from shared.store import EventStore
from shared.write_index import CommentLike, CommentState, ThreadState

MAX_BODY = 40
FUZZING = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)

THREAD_STATE = ThreadState.__table__  # type: ignore[attr-defined]
COMMENT_STATE = CommentState.__table__  # type: ignore[attr-defined]
LIKES = CommentLike.__table__  # type: ignore[attr-defined]

PEOPLE = {"ann": (), "bob": (), "mia": ("moderator",), "ada": ("admin",)}
STAFF = {"mia", "ada"}  # never held; their comments carry the badge
FLAG_THRESHOLD = 2  # the site's, set once per test (the default, 3, takes all four people)
people = st.sampled_from(sorted(PEOPLE))
# Weighted towards the people a rule lets through; "author" is the comment's own author.
admins = st.sampled_from(["ada", "ada", "ann", "mia"])
moderators = st.sampled_from(["mia", "mia", "ada", "bob"])
authors = st.sampled_from(["author"] * 4 + sorted(PEOPLE))
threads = st.sampled_from([0, 0, 0, 1, 1, 1, -1])  # -1: an id no thread may have
comment_picks = st.integers(min_value=0, max_value=200)  # see Rules.comment
bodies = st.sampled_from(["text"] * 6 + ["padded", "blank", "too_long", "nul"])
keys = st.sampled_from([None] * 4 + ["k1", "k2"])
modes = st.sampled_from([None, "post", "pre", "pre", "first_comments", FOLLOW_SITE])

Refusal = tuple[type[ChorusError], str]
BANNED: Refusal = (Forbidden, "banned")
FORBIDDEN: Refusal = (Forbidden, "forbidden")
UNKNOWN_COMMENT: Refusal = (NotFound, "not_found")
THREAD_LOCKED: Refusal = (Conflict, "thread_locked")
COMMENT_DELETED: Refusal = (Conflict, "comment_deleted")
ALREADY_DECIDED: Refusal = (Conflict, "already_decided")
BODY_REFUSALS: dict[str, Refusal] = {
    "blank": (InvalidInput, "body_empty"),
    "too_long": (InvalidInput, "body_too_long"),
    "nul": (InvalidInput, "invalid_body"),
}


@dataclass
class Comment:
    thread: str
    author: str
    parent: str | None
    body: str
    deleted: bool = False
    likers: set[str] = field(default_factory=set)
    status: str = "published"
    flaggers: set[str] = field(default_factory=set)
    open_flags: int = 0  # flags since the last approval
    featured: bool = False

    @property
    def counted(self) -> bool:
        return self.status == "published" and not self.deleted


@dataclass
class Thread:
    title: str | None = None
    locked: bool = False
    moderation: str | None = None  # None: the site's mode, `post`


@dataclass
class Model:
    """What the rules say the state is."""

    threads: dict[str, Thread] = field(default_factory=dict)
    comments: dict[str, Comment] = field(default_factory=dict)  # in posting order
    banned: set[str] = field(default_factory=set)
    premod: set[str] = field(default_factory=set)
    trusted: set[str] = field(default_factory=set)  # authors with an approved comment
    # (user, key) -> the keyed post and the answer it got
    keyed_posts: dict[tuple[str, str], tuple[PostComment, NewComment]] = field(default_factory=dict)

    def visible_below(self, comment_id: str) -> int:
        children = [c for c, row in self.comments.items() if row.parent == comment_id]
        return sum(self.comments[c].counted + self.visible_below(c) for c in children)

    def held_for(self, author: str, staff: bool, thread: Thread | None) -> list[str]:
        """Why a comment by `author` would wait (the bodies here hold no words or links)."""
        if staff:
            return []
        mode = thread.moderation if thread else None
        reasons = []
        if mode == "pre":
            reasons.append("pre_moderation")
        if mode == "first_comments" and author not in self.trusted:
            reasons.append("first_comment")
        if author in self.premod:
            reasons.append("user_premod")
        return reasons


def count_events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM events")).scalar_one())


def rules_machine(engine: Engine) -> type[RuleBasedStateMachine]:
    store = EventStore(engine)
    bus = CommandBus(engine, store, max_body_chars=MAX_BODY)
    site_admin = RequestContext(Actor("site-admin", "Admin", roles=frozenset({"admin"})))
    threshold = ChangeModerationSettings(given=("flag_threshold",), flag_threshold=FLAG_THRESHOLD)
    bus.execute(threshold, site_admin)

    class Rules(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.prefix = uuid.uuid4().hex[:10]
            self.model = Model()
            self.thread_ids = [f"{self.prefix}-t0", f"{self.prefix}-t1", "not a thread id"]
            self.bodies_sent = 0
            # A conversation to start from, so that every rule has something to act on.
            self.post_to("ann", self.thread(0), None, "text", None)
            self.post_to("bob", self.thread(0), next(iter(self.model.comments)), "text", None)
            self.set_thread_mode("ada", 1, "pre")  # and a thread where every comment waits

        # -- helpers ------------------------------------------------------------------

        def user(self, name: str) -> str:
            return f"{self.prefix}-{name}"

        def actor(self, name: str) -> Actor:
            return Actor(self.user(name), name.title(), roles=frozenset(PEOPLE[name]))

        def staff(self) -> set[str]:
            return {self.user(name) for name in STAFF}

        def thread(self, pick: int) -> str:
            return self.thread_ids[pick]

        def comment(self, pick: int) -> str:
            """One of the model's comments, or (one pick in ten) an id nobody posted."""
            ids = list(self.model.comments)
            if not ids or pick % 10 == 0:
                return f"{self.prefix}-no-such-comment"
            return ids[pick % len(ids)]

        def author_of(self, comment_id: str) -> str:
            comment = self.model.comments.get(comment_id)
            return comment.author.removeprefix(f"{self.prefix}-") if comment else "ann"

        def body(self, kind: str) -> str:
            self.bodies_sent += 1
            text = f"b{self.bodies_sent} of {self.prefix}"
            return {
                "text": text,
                "padded": f"  \n{text} \t",
                "blank": " \n\t ",
                "too_long": "x" * (MAX_BODY + 1),
                "nul": f"{text}\x00",
            }[kind]

        def expect(
            self,
            command: Command,
            who: str,
            refusals: set[Refusal],
            appends: int,
            key: str | None = None,
        ) -> Any:
            """Run `command`; refused exactly when the model has refusals, with one of them,
            appending nothing; else accepted, appending `appends` events."""
            before = count_events(engine)
            ctx = RequestContext(self.actor(who), idempotency_key=key)
            try:
                answer = bus.execute(command, ctx)
            except ChorusError as refused:
                outcome = (type(refused), refused.code)
                assert refusals, f"{command} by {who} was refused {outcome}; the model accepts"
                assert outcome in refusals, f"{command} by {who}: {outcome}, not {refusals}"
                assert count_events(engine) == before, f"refused {command} appended events"
                return None
            assert not refusals, f"{command} by {who} was accepted; the model refuses {refusals}"
            assert count_events(engine) == before + appends, command
            return answer

        def thread_refusals(self, thread_id: str) -> set[Refusal]:
            if thread_id == self.thread_ids[-1]:
                return {(InvalidInput, "invalid_thread_id")}
            return set()

        def save_thread(
            self, thread_id: str, title: str | None, locked: bool | None, answer: SavedThread
        ) -> None:
            thread = self.model.threads.setdefault(thread_id, Thread())
            thread.title = title if title is not None else thread.title
            thread.locked = locked if locked is not None else thread.locked
            assert (answer.title, answer.locked) == (thread.title, thread.locked)

        # -- threads ------------------------------------------------------------------

        @rule(
            who=admins,
            pick=threads,
            title=st.sampled_from([None, "One", "Two"]),
            locked=st.sampled_from([None, True, False]),
        )
        def register_thread(
            self, who: str, pick: int, title: str | None, locked: bool | None
        ) -> None:
            thread_id = self.thread(pick)
            refusals = self.thread_refusals(thread_id)
            if "admin" not in PEOPLE[who]:
                refusals.add(FORBIDDEN)
            current = self.model.threads.get(thread_id)
            if current is None:
                appends = 1 + bool(locked)
            else:
                retitled = title is not None and title != current.title
                relocked = locked is not None and locked != current.locked
                appends = retitled + relocked
            answer = self.expect(
                RegisterThread(thread_id, title, None, locked), who, refusals, appends
            )
            if answer is not None:
                self.save_thread(thread_id, title, locked, answer)

        @rule(who=moderators, pick=threads, locked=st.booleans())
        def lock_thread(self, who: str, pick: int, locked: bool) -> None:
            thread_id = self.thread(pick)
            refusals = self.thread_refusals(thread_id)
            if not {"moderator", "admin"} & set(PEOPLE[who]):
                refusals.add(FORBIDDEN)
            current = self.model.threads.get(thread_id)
            appends = 1 + locked if current is None else int(locked != current.locked)
            answer = self.expect(LockThread(thread_id, locked), who, refusals, appends)
            if answer is not None:
                self.save_thread(thread_id, None, locked, answer)

        @rule(who=admins, pick=threads, mode=modes)
        def set_thread_mode(self, who: str, pick: int, mode: str | None) -> None:
            thread_id = self.thread(pick)
            refusals = self.thread_refusals(thread_id)
            if "admin" not in PEOPLE[who]:
                refusals.add(FORBIDDEN)
            current = self.model.threads.get(thread_id)
            was = current.moderation if current else None
            now = was if mode is None else None if mode == FOLLOW_SITE else mode
            appends = (current is None) + (now != was)
            command = RegisterThread(thread_id, moderation=mode)
            answer = self.expect(command, who, refusals, appends)
            if answer is not None:
                self.save_thread(thread_id, None, None, answer)
                self.model.threads[thread_id].moderation = now
                assert answer.moderation == now

        # -- comments -----------------------------------------------------------------

        @rule(who=people, pick=threads, kind=bodies, key=keys)
        def post(self, who: str, pick: int, kind: str, key: str | None) -> None:
            self.post_to(who, self.thread(pick), None, kind, key)

        @precondition(lambda self: self.model.comments)
        @rule(
            who=people,
            parent_pick=comment_picks,
            elsewhere=st.sampled_from([False] * 5 + [True]),
            kind=bodies,
            key=keys,
        )
        def reply(
            self, who: str, parent_pick: int, elsewhere: bool, kind: str, key: str | None
        ) -> None:
            """A reply, usually in its parent's thread; sometimes in the other one."""
            parent_id = self.comment(parent_pick)
            parent = self.model.comments.get(parent_id)
            thread_id = parent.thread if parent else self.thread(0)
            if elsewhere:
                thread_id = next(t for t in self.thread_ids[:2] if t != thread_id)
            self.post_to(who, thread_id, parent_id, kind, key)

        def post_to(
            self, who: str, thread_id: str, parent_id: str | None, kind: str, key: str | None
        ) -> None:
            command = PostComment(thread_id, self.body(kind), parent_id)
            if key is not None and (self.user(who), key) in self.model.keyed_posts:
                # A new request with a used key: refused whatever else is true.
                self.expect(
                    command, who, {(IdempotencyKeyReused, "idempotency_key_reused")}, 0, key
                )
                return
            refusals = self.thread_refusals(thread_id)
            if self.user(who) in self.model.banned:
                refusals.add(BANNED)
            if kind in BODY_REFUSALS:
                refusals.add(BODY_REFUSALS[kind])
            thread = self.model.threads.get(thread_id)
            if thread is not None and thread.locked:
                refusals.add(THREAD_LOCKED)
            parent = self.model.comments.get(parent_id) if parent_id else None
            if parent_id is not None and (parent is None or parent.thread != thread_id):
                refusals.add((InvalidInput, "parent_not_found"))
            elif parent is not None and parent.deleted:
                refusals.add((Conflict, "parent_deleted"))
            elif parent is not None and parent.status != "published":
                refusals.add((Conflict, "parent_not_published"))
            answer = self.expect(command, who, refusals, 1 + (thread is None), key)
            if answer is None:
                return
            assert (answer.thread_id, answer.parent_id) == (thread_id, parent_id)
            held_for = self.model.held_for(self.user(who), who in STAFF, thread)
            assert list(answer.held_for) == held_for, command
            event(f"posted, held for {held_for}" if held_for else "posted")
            self.model.threads.setdefault(thread_id, Thread())
            self.model.comments[answer.id] = Comment(
                thread_id,
                self.user(who),
                parent_id,
                command.body.strip(),
                status="pending" if held_for else "published",
            )
            if key is not None:
                self.model.keyed_posts[(self.user(who), key)] = (command, answer)

        @rule(pick=st.integers(min_value=0, max_value=50))
        def retry_a_keyed_post(self, pick: int) -> None:
            """The same request with the same key: the first answer again, nothing appended,
            whatever happened since (a lock, a ban, the parent's deletion)."""
            if not self.model.keyed_posts:
                return
            (user, key), (command, first) = sorted(self.model.keyed_posts.items())[
                pick % len(self.model.keyed_posts)
            ]
            name = user.removeprefix(f"{self.prefix}-")
            assert self.expect(command, name, set(), 0, key) == first

        @precondition(lambda self: self.model.comments)
        @rule(who=authors, pick=comment_picks, kind=bodies)
        def edit(self, who: str, pick: int, kind: str) -> None:
            comment_id = self.comment(pick)
            who = self.author_of(comment_id) if who == "author" else who
            command = EditComment(comment_id, self.body(kind))
            refusals: set[Refusal] = set()
            if self.user(who) in self.model.banned:
                refusals.add(BANNED)
            if kind in BODY_REFUSALS:
                refusals.add(BODY_REFUSALS[kind])
            comment = self.model.comments.get(comment_id)
            if comment is None:
                refusals.add(UNKNOWN_COMMENT)
            else:
                if comment.author != self.user(who):
                    refusals.add(FORBIDDEN)
                if comment.deleted:
                    refusals.add(COMMENT_DELETED)
                if self.model.threads[comment.thread].locked:
                    refusals.add(THREAD_LOCKED)
            answer = self.expect(command, who, refusals, 1)
            if answer is not None and comment is not None:
                comment.body = command.body.strip()

        @precondition(lambda self: self.model.comments)
        @rule(who=authors, pick=comment_picks)
        def delete(self, who: str, pick: int) -> None:
            """Author, moderator or admin; also when banned or locked; twice is once."""
            comment_id = self.comment(pick)
            who = self.author_of(comment_id) if who == "author" else who
            comment = self.model.comments.get(comment_id)
            refusals: set[Refusal] = set()
            if comment is None:
                refusals.add(UNKNOWN_COMMENT)
            elif comment.author != self.user(who) and not PEOPLE[who]:
                refusals.add(FORBIDDEN)
            appends = int(comment is not None and not comment.deleted)
            answer = self.expect(DeleteComment(comment_id), who, refusals, appends)
            if answer is not None and comment is not None:
                comment.deleted = True

        @precondition(lambda self: self.model.comments)
        @rule(who=people, pick=comment_picks, liked=st.booleans())
        def like(self, who: str, pick: int, liked: bool) -> None:
            """Idempotent; a banned user may take a like back but not give one."""
            comment_id = self.comment(pick)
            comment = self.model.comments.get(comment_id)
            refusals: set[Refusal] = set()
            if liked and self.user(who) in self.model.banned:
                refusals.add(BANNED)
            if comment is None:
                refusals.add(UNKNOWN_COMMENT)
            elif liked and comment.deleted:
                refusals.add(COMMENT_DELETED)
            likes_now = comment is not None and self.user(who) in comment.likers
            command = LikeComment(comment_id) if liked else UnlikeComment(comment_id)
            answer = self.expect(command, who, refusals, int(liked != likes_now))
            if answer is None or comment is None:
                return
            if liked:
                comment.likers.add(self.user(who))
            else:
                comment.likers.discard(self.user(who))
            assert answer.like_count == len(comment.likers)

        # -- moderation ---------------------------------------------------------------

        @precondition(lambda self: self.model.comments)
        @rule(
            who=people,
            pick=comment_picks,
            reason=st.sampled_from(["spam", "abuse", "off_topic", "other", "gossip"]),
        )
        def flag(self, who: str, pick: int, reason: str) -> None:
            """Once per reader; the flag that reaches the threshold takes a published comment
            off the page (a held one stays held, its flags counted for the moderator)."""
            comment_id = self.comment(pick)
            comment = self.model.comments.get(comment_id)
            refusals: set[Refusal] = set()
            if reason == "gossip":
                refusals.add((InvalidInput, "invalid_reason"))
            if self.user(who) in self.model.banned:
                refusals.add(BANNED)
            appends = 0
            if comment is None:
                refusals.add(UNKNOWN_COMMENT)
            elif comment.author == self.user(who):
                refusals.add((Forbidden, "own_comment"))
            elif comment.deleted:
                refusals.add(COMMENT_DELETED)
            elif comment.status == "rejected":
                refusals.add((Conflict, "comment_rejected"))
            elif self.user(who) not in comment.flaggers:
                reaches = comment.open_flags + 1 >= FLAG_THRESHOLD
                appends = 1 + (reaches and comment.status == "published")
            answer = self.expect(FlagComment(comment_id, reason), who, refusals, appends)
            if answer is None or comment is None:
                return
            if appends:
                comment.flaggers.add(self.user(who))
                comment.open_flags += 1
                if appends == 2:
                    comment.status = "pending"
                    event("flags reached the threshold")
            assert answer.flag_count == comment.open_flags

        def decision_refusals(self, who: str, comment: Comment | None) -> set[Refusal]:
            refusals: set[Refusal] = set()
            if not PEOPLE[who]:
                refusals.add(FORBIDDEN)
            if comment is None:
                refusals.add(UNKNOWN_COMMENT)
            elif comment.deleted:
                refusals.add(COMMENT_DELETED)
            return refusals

        @precondition(lambda self: self.model.comments)
        @rule(who=moderators, pick=comment_picks, approving=st.booleans())
        def decide(self, who: str, pick: int, approving: bool) -> None:
            """Approve (held, rejected, or published with flags) or reject; else 409."""
            comment_id = self.comment(pick)
            comment = self.model.comments.get(comment_id)
            refusals = self.decision_refusals(who, comment)
            if comment is not None and not comment.deleted:
                decided = (
                    comment.status == "published" and comment.open_flags == 0
                    if approving
                    else comment.status == "rejected"
                )
                if decided:
                    refusals.add(ALREADY_DECIDED)
            command = ApproveComment(comment_id) if approving else RejectComment(comment_id, "no")
            answer = self.expect(command, who, refusals, 1)
            if answer is None or comment is None:
                return
            comment.status = "published" if approving else "rejected"
            if approving:
                comment.open_flags = 0
                self.model.trusted.add(comment.author)
            assert answer.status == comment.status
            event(f"{answer.status} by a moderator")

        @precondition(lambda self: self.model.comments)
        @rule(who=moderators, pick=comment_picks, featured=st.booleans())
        def feature(self, who: str, pick: int, featured: bool) -> None:
            comment_id = self.comment(pick)
            comment = self.model.comments.get(comment_id)
            refusals = self.decision_refusals(who, comment)
            appends = int(comment is not None and comment.featured != featured)
            answer = self.expect(FeatureComment(comment_id, featured), who, refusals, appends)
            if answer is not None and comment is not None:
                comment.featured = featured

        @rule(who=moderators, whom=people, on=st.booleans())
        def premod(self, who: str, whom: str, on: bool) -> None:
            target = self.user(whom)
            refusals: set[Refusal] = set() if PEOPLE[who] else {FORBIDDEN}
            appends = int(on != (target in self.model.premod))
            answer = self.expect(SetPremod(target, on), who, refusals, appends)
            if answer is None:
                return
            if on:
                self.model.premod.add(target)
            else:
                self.model.premod.discard(target)

        # -- bans ---------------------------------------------------------------------

        @rule(who=moderators, whom=people, banning=st.booleans())
        def ban(self, who: str, whom: str, banning: bool) -> None:
            target = self.user(whom)
            refusals: set[Refusal] = set()
            if not PEOPLE[who]:
                refusals.add((Forbidden, "forbidden"))
            if banning and who == whom:
                refusals.add((InvalidInput, "cannot_ban_yourself"))
            appends = int(banning != (target in self.model.banned))
            command = BanUser(target, "spam") if banning else UnbanUser(target)
            answer = self.expect(command, who, refusals, appends)
            if answer is None:
                return
            assert answer == BanState(user_id=target, banned=banning, until=None)
            if banning:
                self.model.banned.add(target)
            else:
                self.model.banned.discard(target)

        @rule(pick=threads)
        def fold(self, pick: int) -> None:
            """A worker folds one thread now (the final check folds the rest)."""
            if self.thread(pick) in self.model.threads:
                fold_thread(engine, store, self.thread(pick), batch_size=3)

        # -- checks -------------------------------------------------------------------

        @invariant()
        def the_write_side_index_is_the_model(self) -> None:
            if not hasattr(self, "model"):
                return
            mine = list(self.model.threads)
            with engine.connect() as conn:
                thread_rows = conn.execute(
                    sa.select(THREAD_STATE).where(THREAD_STATE.c.thread_id.in_(mine))
                )
                comment_rows = conn.execute(
                    sa.select(COMMENT_STATE).where(COMMENT_STATE.c.thread_id.in_(mine))
                )
                comments = {
                    r.comment_id: (
                        r.thread_id,
                        r.author_id,
                        r.parent_id,
                        r.deleted,
                        r.like_count,
                        r.status,
                        r.flag_count,
                        r.featured,
                    )
                    for r in comment_rows
                }
                likes = conn.execute(
                    sa.select(LIKES).where(LIKES.c.comment_id.in_(list(self.model.comments)))
                )
                liked = {(r.comment_id, r.user_id) for r in likes}
                banned = conn.execute(
                    sa.select(banned_users.c.user_id).where(
                        banned_users.c.user_id.like(f"{self.prefix}-%")
                    )
                )
                premod = conn.execute(
                    sa.select(premod_users.c.user_id).where(
                        premod_users.c.user_id.like(f"{self.prefix}-%")
                    )
                )
                threads_now = {r.thread_id: (r.title, r.locked, r.moderation) for r in thread_rows}
                banned_now = set(banned.scalars())
                premod_now = set(premod.scalars())
            m = self.model
            assert threads_now == {
                t: (s.title, s.locked, s.moderation) for t, s in m.threads.items()
            }
            assert comments == {
                c: (
                    s.thread,
                    s.author,
                    s.parent,
                    s.deleted,
                    len(s.likers),
                    s.status,
                    s.open_flags,
                    s.featured,
                )
                for c, s in m.comments.items()
            }
            assert liked == {(c, u) for c, s in m.comments.items() for u in s.likers}
            assert banned_now == m.banned
            assert premod_now == m.premod

        def teardown(self) -> None:
            if not hasattr(self, "model") or sys.exc_info()[1] is not None:
                return  # a step failed: let its error be the one reported
            self.the_thread_projection_shows_the_model()

        def the_thread_projection_shows_the_model(self) -> None:
            m = self.model
            for thread_id in m.threads:
                fold_thread(engine, store, thread_id)
            comments, threads_view = LIVE.comments, LIVE.threads
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(comments).where(comments.c.thread_id.in_(list(m.threads)))
                )
                shown = {row.comment_id: row for row in rows}
                thread_rows = conn.execute(
                    sa.select(threads_view).where(threads_view.c.thread_id.in_(list(m.threads)))
                )
                shown_threads = {row.thread_id: row for row in thread_rows}
            assert set(shown) == set(m.comments)
            for comment_id, c in m.comments.items():
                row = shown[comment_id]
                direct = [r for r in m.comments.values() if r.parent == comment_id]
                assert (row.thread_id, row.author_id, row.parent_id, row.deleted) == (
                    c.thread,
                    c.author,
                    c.parent,
                    c.deleted,
                ), comment_id
                assert row.like_count == len(c.likers), comment_id
                assert (row.status, row.flag_count, row.featured) == (
                    c.status,
                    c.open_flags,
                    c.featured,
                ), comment_id
                assert row.badges == ("staff" if c.author in self.staff() else None), comment_id
                assert row.reply_count == sum(r.counted for r in direct), comment_id
                assert row.descendant_count == m.visible_below(comment_id), comment_id
                if c.deleted:
                    assert row.body_html is None
                else:
                    assert c.body in row.body_html
            assert set(shown_threads) == set(m.threads)
            for thread_id, t in m.threads.items():
                mine = [c for c in m.comments.values() if c.thread == thread_id]
                visible = [c for c in mine if c.counted]
                row = shown_threads[thread_id]
                assert (row.title, row.locked) == (t.title, t.locked)
                assert row.comment_count == len(visible)
                assert row.top_level_count == sum(c.parent is None for c in visible)
                assert row.participant_count == len({c.author for c in visible})

    return Rules


def test_random_command_sequences_follow_the_rules(engine: Engine) -> None:
    run_state_machine_as_test(rules_machine(engine), settings=FUZZING)
