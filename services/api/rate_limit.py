"""Write limits per user (and, for posts, per client IP), kept in Redis.

Each limit is "at most N in any window of W seconds", kept as a sliding-window log: a
sorted set of request times per (action, window, subject). One Lua script checks every
limit of an action and records the request only if all of them allow it, so concurrent
API processes can never overshoot, and a refused request does not count. Times come
from the Redis server, so API hosts need not agree on the clock. Keys expire with their
window.

The log is the truth and Redis only guards the door: if Redis cannot be reached, the
request is allowed and a warning logged (and Redis is left alone for a moment, so a dead
socket does not slow every post).
"""

import ipaddress
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from redis import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from services.api.deps import CurrentUser
from services.api.errors import error_response
from shared.commands import Actor
from shared.errors import ChorusError
from shared.settings import Settings

log = logging.getLogger(__name__)

Action = Literal["post", "edit", "like", "subscription", "preferences", "mark_read"]

# KEYS: one sorted set per limit. ARGV[1]: a unique member for this request; then
# (window ms, limit) per key. Returns 0 (allowed and recorded) or the milliseconds until
# every limit has room again.
_SLIDING_WINDOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(entry[2]) + window - now)
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i]))
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` requests by one subject (a user or an IP) in any `window_seconds`."""

    subject: Literal["user", "ip"]
    count: int
    window_seconds: int


def limits_for(action: Action, settings: Settings) -> tuple[Limit, ...]:
    if action != "post":
        return (Limit("user", _PER_MINUTE[action](settings), 60),)
    return (
        Limit("user", settings.rate_limit_posts_burst, 10),
        Limit("user", settings.rate_limit_posts_per_minute, 60),
        Limit("user", settings.rate_limit_posts_per_hour, 3600),
        Limit("ip", settings.rate_limit_posts_per_minute_per_ip, 60),
    )


# The single-window actions: at most N per user in any minute. A like and an unlike are
# one action, so toggling counts every click.
_PER_MINUTE: dict[Action, Callable[[Settings], int]] = {
    "edit": lambda s: s.rate_limit_edits_per_minute,
    "like": lambda s: s.rate_limit_likes_per_minute,
    "subscription": lambda s: s.rate_limit_subscriptions_per_minute,
    "preferences": lambda s: s.rate_limit_preferences_per_minute,
    "mark_read": lambda s: s.rate_limit_mark_read_per_minute,
}


class RateLimited(ChorusError):
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """Built once per process (the app's lifespan); `check` raises `RateLimited`."""

    def __init__(
        self, redis: Redis, settings: Settings, *, pause_after_failure: float = 2.0
    ) -> None:
        self.settings = settings
        self.enabled = settings.rate_limit_enabled
        self.script = redis.register_script(_SLIDING_WINDOW)
        self.pause_after_failure = pause_after_failure
        self._paused_until = 0.0

    def check(self, action: Action, user_id: str, ip: str) -> None:
        if not self.enabled or time.monotonic() < self._paused_until:
            return
        limits = limits_for(action, self.settings)
        wait_ms = self._wait_ms(action, limits, {"user": user_id, "ip": ip})
        if wait_ms > 0:
            raise RateLimited(max(1, math.ceil(wait_ms / 1000)))

    def _wait_ms(self, action: Action, limits: Sequence[Limit], subjects: dict[str, str]) -> int:
        # One hash tag per action: all keys of one check live in one Redis Cluster slot.
        keys = [
            f"chorus:rate:{{{action}}}:{limit.window_seconds}s:{limit.subject}:"
            f"{subjects[limit.subject]}"
            for limit in limits
        ]
        args: list[str | int] = [uuid.uuid4().hex]
        for limit in limits:
            args += [limit.window_seconds * 1000, limit.count]
        try:
            return int(self.script(keys=keys, args=args))
        except RedisError as exc:
            self._paused_until = time.monotonic() + self.pause_after_failure
            log.warning("rate limits not applied: Redis is unreachable (%s)", exc)
            return 0


def client_ip(request: Request) -> str:
    """The peer address uvicorn reports (proxy headers from trusted proxies applied).

    An IPv6 host usually owns a whole /64, so IPv6 clients are counted per /64.
    """
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def _check(request: Request, action: Action, user: Actor) -> None:
    limiter = _limiter(request)
    if limiter.enabled:  # Redis is blocking I/O: off the event loop
        await run_in_threadpool(limiter.check, action, user.id, client_ip(request))


def limit(action: Action) -> Any:
    """A route dependency that checks `action`'s limits for the signed-in user."""

    async def check_limits(request: Request, user: CurrentUser) -> None:
        await _check(request, action, user)

    return Depends(check_limits)


PostingLimit = limit("post")
EditingLimit = limit("edit")
LikingLimit = limit("like")
SubscribingLimit = limit("subscription")
PreferencesLimit = limit("preferences")
MarkingReadLimit = limit("mark_read")


async def rate_limited_response(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return error_response(429, exc.code, exc.message, {"Retry-After": str(exc.retry_after)})
