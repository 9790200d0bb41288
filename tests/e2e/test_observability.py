"""Real processes: a worker's log lines name the request that queued the job; /metrics answers."""

import json
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx

from shared.tokens import mint_token
from tests.e2e.conftest import CHORUS, JWT_SECRET

REQUEST_ID = "req-e2e-observability-1"


def test_the_fold_job_logs_the_request_id_of_the_write_that_queued_it(
    api: Callable[[], AbstractContextManager[str]], chorus_env: dict[str, str]
) -> None:
    token = mint_token(JWT_SECRET, sub="ann", name="Ann")
    with api() as base:
        posted = httpx.post(
            f"{base}/v1/threads/t1/comments",
            json={"body": "hello"},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": REQUEST_ID},
        )
        assert posted.status_code == 201

        worker = subprocess.run(
            [*CHORUS, "worker", "--burst"], env=chorus_env, capture_output=True, check=True
        )
        metrics = httpx.get(f"{base}/metrics")

    lines = [json.loads(line) for line in worker.stderr.decode().splitlines() if line]
    folds = [line for line in lines if line["logger"] == "services.worker.jobs"]
    assert any(line["request_id"] == REQUEST_ID and line["thread_id"] == "t1" for line in folds), (
        lines
    )
    assert metrics.status_code == 200
    assert 'chorus_events_appended_total{type="CommentPosted"} 1.0' in metrics.text
    assert 'chorus_projection_lag_events{projection="threads"} 0.0' in metrics.text
