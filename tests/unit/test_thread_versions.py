"""What an API process remembers of thread versions for conditional reads."""

import pytest

from services.api import thread_versions
from services.api.thread_versions import ThreadVersions


def test_a_version_is_trusted_for_max_age_and_never_goes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(thread_versions.time, "monotonic", lambda: now[0])
    versions = ThreadVersions(1.0)

    versions.saw("t1", 7)
    versions.saw("t1", 5)  # an older announcement arriving late
    assert versions.fresh("t1") == 7
    now[0] += 1.5
    assert versions.fresh("t1") is None  # past max_age: read it again
    assert versions.fresh("never") is None


def test_zero_max_age_remembers_nothing() -> None:
    versions = ThreadVersions(0)
    versions.saw("t1", 7)
    assert versions.fresh("t1") is None


def test_the_least_recently_used_thread_goes_first() -> None:
    versions = ThreadVersions(60, max_threads=2)
    versions.saw("a", 1)
    versions.saw("b", 1)
    assert versions.fresh("a") == 1  # a is used: b is now the oldest
    versions.saw("c", 1)
    assert versions.fresh("b") is None
    assert versions.fresh("a") == versions.fresh("c") == 1
