"""The one settings object, read from `CHORUS_*` environment variables."""

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.origins import parse_origins


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHORUS_", extra="ignore")

    database_url: str = "sqlite:///./chorus.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The HS256 key shared with the publication's login. No default: every entry point
    # but `chorus dev` refuses to start without a real one (shared/jwt_secret.py).
    jwt_secret: str = ""
    jwt_leeway_seconds: int = 30

    max_body_chars: int = Field(default=10_000, ge=1)
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    db_pool_size: int = Field(default=10, ge=1)
    append_retries: int = Field(default=8, ge=1)
    # How long a write may wait to be committed before it is answered 503 `busy` (nothing
    # of it committed), and how many may wait at once before more are refused at once.
    write_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    write_queue_limit: int = Field(default=1000, ge=1)
    sweep_interval_seconds: int = Field(default=10, ge=1)
    fold_batch_size: int = Field(default=1000, ge=1)
    # When workers are behind, a thread nudged while fold jobs wait is folded once it has
    # been dirty this long, so its events gather into one fold (shared.nudges, decision 23).
    fold_coalesce_ms: int = Field(default=250, ge=0, le=5000)
    # How long a read with `min_version` waits for the projection before answering anyway.
    read_wait_seconds: float = Field(default=5.0, ge=0, le=60)
    # Waiting reads wake on the worker's fold announcements (Redis pub/sub); this slow poll,
    # one statement per API process for all waited threads, covers lost announcements.
    read_wait_poll_seconds: float = Field(default=0.5, gt=0, le=10)
    # A conditional read may answer 304 from the version this process last heard the fold
    # announce (or read), if that was this recent; 0: always read it (decision 27).
    read_version_trust_seconds: float = Field(default=1.0, ge=0, le=5)
    # Live updates (GET /v1/threads/{id}/live, Server-Sent Events). A comment line this
    # often keeps proxies from closing a quiet stream; a reader further behind than
    # `live_max_replay` changes is told to reload (a reset) instead of replayed; a reader
    # with `live_queue_size` changes not yet sent is dropped (with a reset) so nobody else
    # waits for it; browsers reconnect `live_retry_ms` after a stream ends.
    live_keep_alive_seconds: float = Field(default=15.0, gt=0, le=300)
    live_max_replay: int = Field(default=500, ge=1, le=10_000)
    live_queue_size: int = Field(default=256, ge=1, le=100_000)
    live_retry_ms: int = Field(default=3000, ge=0, le=600_000)
    # `chorus api`: after SIGTERM, how long open requests (live streams never end by
    # themselves) may go on before they are cut; their readers reconnect elsewhere.
    shutdown_grace_seconds: int = Field(default=5, ge=0, le=300)

    # Publications' sites whose pages may call the API from the browser (services/api/cors.py):
    # comma-separated origins, `https://news.example.com`. Empty: same-origin only.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # How long browsers and CDNs may reuse a comment read before asking again (with its
    # ETag, answered 304 when the thread has not moved): services/api/read_caching.py.
    read_max_age: int = Field(default=5, ge=0, le=3600)

    # Email. `public_url` is where this API is reached from outside (unsubscribe links);
    # `smtp_url` is smtp://, smtp+starttls:// or smtps://, with optional user:password@.
    public_url: str = "http://127.0.0.1:8000"
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "Chorus <comments@localhost>"
    mail_batch_size: int = Field(default=200, ge=1)
    # A claim lasts this long; a mailer stops sending from its claim after half of it.
    mail_lease_seconds: int = Field(default=300, ge=10)
    mail_max_attempts: int = Field(default=8, ge=1)

    # Write limits, kept in Redis (services/api/rate_limit.py). Each is "at most N in any
    # window": sized so that a person typing never meets them. Off for benchmarks and
    # trusted server-to-server callers.
    rate_limit_enabled: bool = True
    rate_limit_posts_burst: int = Field(default=5, ge=1)  # per user, in any 10 seconds
    rate_limit_posts_per_minute: int = Field(default=10, ge=1)  # per user
    rate_limit_posts_per_hour: int = Field(default=300, ge=1)  # per user
    rate_limit_posts_per_minute_per_ip: int = Field(default=60, ge=1)
    rate_limit_edits_per_minute: int = Field(default=30, ge=1)  # per user
    # The other writes, per user in any minute: each appends an event, so a script must
    # not be able to flood a stream with them. A liking (or unliking) spree through a
    # thread stays under one a second; settings and read marks change far less often.
    rate_limit_likes_per_minute: int = Field(default=60, ge=1)
    rate_limit_subscriptions_per_minute: int = Field(default=30, ge=1)
    rate_limit_preferences_per_minute: int = Field(default=30, ge=1)
    rate_limit_mark_read_per_minute: int = Field(default=60, ge=1)

    # Retention (services/worker/retention.py): a worker job deletes what is past it.
    # An idempotency key answers retries for at least this long (a client retries within
    # seconds or minutes; a day covers a night-long outage, as Stripe's 24 h does).
    idempotency_retention_hours: int = Field(default=24, ge=1)
    # Sent, skipped and failed outbox rows are kept this long after they were last due,
    # for an operator asking "did that email go out?"; pending and sending rows always stay.
    outbox_retention_days: int = Field(default=7, ge=1)
    # `/metrics` reads SQL and Redis at most once per this many seconds per API process;
    # concurrent scrapes share one reading. 0 reads on every scrape.
    metrics_cache_seconds: float = Field(default=5.0, ge=0, le=60)

    # When set, `/metrics` answers only `Authorization: Bearer <it>`; when empty, only
    # loopback and private addresses (services/api/metrics_access.py).
    metrics_token: str = ""

    # The demo page at /demo/ and its POST /demo/token, which mints tokens for fixed demo
    # readers to anyone: `chorus dev` turns it on. Never enable it in production.
    demo_enabled: bool = False

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> tuple[str, ...]:
        return parse_origins(value)


@lru_cache
def get_settings() -> Settings:
    return Settings()
