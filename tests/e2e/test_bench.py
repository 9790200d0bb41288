"""The benchmark keeps working: a scaled-down `bench/run.py` on the real stack, checked for
what it verifies along the way (never for how fast anything was).

Isso and the machine ceilings are left out: the peer installs from PyPI into its own
environment, and both only add minutes to a run that proves nothing more about Chorus.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ["posting", "sustained", "lag", "reads", "rebuild"]


@pytest.mark.postgres
@pytest.mark.redis
def test_a_quick_bench_run_measures_every_scenario_and_loses_nothing(
    postgres_template: str, redis_url: str, tmp_path: Path
) -> None:
    # The fixtures only prove the servers answer: the bench makes its own database and
    # uses Redis database 14.
    only = ",".join(SCENARIOS)
    run = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", only, "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["errors"] == {}

    for level in results["posting"]["levels"].values():
        assert level["accepted"] == level["shown_count"] > 0
        assert level["count_matches"]
        assert level["orphaned_replies"] == 0
    walked = results["posting"]["walk"]["comments"]
    assert walked
    assert all(n == results["posting"]["levels"]["1"]["accepted"] for n in walked)

    sustained = results["sustained"]
    assert sustained["count_matches"]
    assert sustained["refused"] == {}

    lag = results["lag"]
    assert lag["accepted"] == lag["sent"] == lag["seen"]
    assert lag["never_seen"] == 0

    assert all(row["errors"] == 0 for row in results["reads"]["rows"].values())
    rebuild = results["rebuild"]
    assert rebuild["events"] == rebuild["events_in_log"] > 0
    assert rebuild["dead_lettered"] == 0
    assert "## Posting" in (tmp_path / "latest.md").read_text()
