"""Debian's /usr/bin/chromium, driven through Playwright (no `playwright install`).

Importing this module skips the test module when Chromium is missing, or fails it when the
run requires every service (`CHORUS_TEST_REQUIRE_SERVICES=1`, as CI does).
"""

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Generous: Chromium, the API and a worker share two loaded cores. Only waits for what must
# appear reach it.
TIMEOUT_MS = 60_000

if not Path(CHROMIUM).exists():
    if os.environ.get("CHORUS_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests",
        allow_module_level=True,
    )
