"""Stream naming. A thread's stream is its id; a user's stream lives in a namespace that
thread ids cannot enter ('~' is outside the thread id alphabet)."""

NOT_A_THREAD_PREFIX = "~"  # outside the thread id alphabet: users', the site's streams
USER_STREAM_PREFIX = "~user:"
# The site's moderation settings (word lists, mode, link limit, flag threshold).
SITE_MODERATION_STREAM = "~site:moderation"


def user_stream(user_id: str) -> str:
    return f"{USER_STREAM_PREFIX}{user_id}"


def is_thread_stream(stream_id: str) -> bool:
    return not stream_id.startswith(NOT_A_THREAD_PREFIX)
