"""What `bench/run.py`'s scenarios share: running a load driver in its own process, and
waiting for a thread's projection to catch up."""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from stack import REPO

BENCH = Path(__file__).resolve().parent
SETTLE_SECONDS = 60.0
Json = dict[str, Any]


def log(message: str) -> None:
    print(f"[run] {message}", file=sys.stderr, flush=True)


def drive(spec: Json, script: str = "load.py") -> Json:
    """Run a load driver (bench/load.py, or another) in its own process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, str(BENCH / script), json.dumps(spec)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        check=True,
    )
    answer: Json = json.loads(done.stdout)
    return answer


def wait_for_thread(base: str, thread_id: str, version: int) -> Json:
    """The thread summary once its projection reached `version` (or SETTLE_SECONDS passed)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    with httpx.Client(base_url=base, timeout=30) as client:
        while True:
            params = {"min_version": version}
            thread: Json = client.get(f"/v1/threads/{thread_id}", params=params).json()
            if thread.get("version", 0) >= version or time.monotonic() > deadline:
                return thread
