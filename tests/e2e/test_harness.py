"""The harness itself: every process a test starts is reaped, even one that will not stop,
and each test session has a Redis of its own."""

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import suppress

import psutil
import pytest
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry

from shared.nudges import FOLD_QUEUE
from tests.conftest import CONFIGURED_REDIS_URL
from tests.e2e.conftest import Workers, run_chorus, running_api
from tests.ports import free_port
from tests.waiting import wait_for

GRACE_SECONDS = 1.0


def children_running(marker: str) -> list[psutil.Process]:
    """This test process's children whose command line holds `marker`, zombies included."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with suppress(psutil.NoSuchProcess):  # a zombie's status still answers
            if child.status() == psutil.STATUS_ZOMBIE or marker in " ".join(child.cmdline()):
                found.append(child)
    return found


def group_has_no_live_member(pgid: int) -> bool:
    """No process of the group still runs. A killed grandchild is re-parented to init and
    stays a zombie (still in the group) until init reaps it, which this test cannot hurry."""
    for process in psutil.process_iter():
        with suppress(psutil.NoSuchProcess, ProcessLookupError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return False
    return True


def test_a_worker_still_busy_after_its_grace_period_is_killed_and_reaped(
    chorus_env: dict[str, str], redis: Redis
) -> None:
    """RQ's warm shutdown waits for the job at hand; a job longer than the grace period
    gets the worker's whole group SIGKILLed, and the worker is waited for."""
    run_chorus(chorus_env, "migrate")
    pool = Workers(chorus_env, grace=GRACE_SECONDS)
    worker = pool.start()
    queue = Queue(FOLD_QUEUE, connection=redis)
    queue.enqueue("time.sleep", 600)
    wait_for(lambda: StartedJobRegistry(queue=queue).count == 1, "the worker to start the job")

    pool.stop_all()

    assert worker.returncode == -signal.SIGKILL  # reaped: returncode is set
    # its work horse went with it (a SIGKILL lands asynchronously, so wait for it)
    wait_for(lambda: group_has_no_live_member(worker.pid), "the worker's group to die")


@pytest.fixture
def stalled_request() -> Iterator[socket.socket]:
    """A connection, open past the API's stop, whose request body never finishes arriving:
    uvicorn's graceful shutdown waits for that request forever."""
    with socket.socket() as sock:
        yield sock


def test_an_api_that_does_not_stop_in_its_grace_period_is_killed_and_reaped(
    chorus_env: dict[str, str], stalled_request: socket.socket
) -> None:
    run_chorus(chorus_env, "migrate")
    port = free_port()
    with running_api(chorus_env, port, grace=GRACE_SECONDS):
        stalled_request.connect(("127.0.0.1", port))
        stalled_request.sendall(
            b"POST /v1/threads/t1/comments HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        assert children_running(f"--port {port}")  # the API runs

    assert children_running(f"--port {port}") == []


def test_the_session_redis_is_its_own_unless_one_is_configured(
    redis_url: str, redis: Redis
) -> None:
    """Without CHORUS_TEST_REDIS_URL, the Redis tests use is a redis-server this test
    session started (its child), not one another session could flush."""
    if CONFIGURED_REDIS_URL:
        assert redis_url == CONFIGURED_REDIS_URL
    else:
        server = psutil.Process(int(redis.info("server")["process_id"]))
        assert server.ppid() == os.getpid()
