"""The scrape cache: one reading per period, shared by whoever asks while it runs."""

import threading

import pytest

from services.api.scrape_cache import SingleFlight
from tests.waiting import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """Counts readings; each answers its own number."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> int:
        self.readings += 1
        return self.readings


def test_a_reading_is_reused_until_its_period_ends() -> None:
    clock, read = Clock(), Reader()
    cache = SingleFlight[int](5, clock=clock)

    first = cache.get(read)
    clock.now += 4.9
    within = cache.get(read)
    clock.now += 0.1
    after = cache.get(read)

    assert (first, within, after) == (1, 1, 2)


def test_with_no_period_every_call_reads() -> None:
    cache, read = SingleFlight[int](0), Reader()

    assert [cache.get(read) for _ in range(3)] == [1, 2, 3]


def test_callers_arriving_during_a_reading_share_it_even_with_no_period() -> None:
    cache = SingleFlight[int](0)
    release = threading.Event()
    readings = 0

    def slow_read() -> int:
        nonlocal readings
        readings += 1
        release.wait(5)
        return 42

    results: list[int] = []
    callers = [threading.Thread(target=lambda: results.append(cache.get(slow_read)))]
    callers[0].start()
    wait_for(lambda: readings == 1, "the first reading")
    callers += [
        threading.Thread(target=lambda: results.append(cache.get(slow_read))) for _ in range(4)
    ]
    for caller in callers[1:]:
        caller.start()
    wait_for(lambda: cache.waiting == 4, "four scrapes waiting")
    release.set()
    for caller in callers:
        caller.join()

    assert results == [42] * 5
    assert readings == 1
    assert cache.waiting == 0


def test_a_failed_reading_is_shared_with_nobody() -> None:
    cache, read = SingleFlight[int](60), Reader()

    def broken() -> int:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        cache.get(broken)

    assert cache.get(read) == 1
