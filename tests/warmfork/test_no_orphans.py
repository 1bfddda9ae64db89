"""kill -9 of the process that started the launcher leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from .conftest import ENTRIES, IMPORT_ROOT, alive


def test_no_orphans_after_kill_9_of_the_daemon() -> None:
    driver = subprocess.Popen(
        [sys.executable, "-m", ENTRIES.rsplit(".", 1)[0] + ".orphan_driver", ENTRIES],
        stdout=subprocess.PIPE,
        cwd=IMPORT_ROOT,
        env={**os.environ, "PYTHONPATH": IMPORT_ROOT},
    )
    try:
        line = driver.stdout.readline()  # type: ignore[union-attr]
        assert line, "driver died before reporting its pids"
        pids = json.loads(line)
        everything = [pids["launcher"], pids["seed"], pids["cold"], *pids["instances"]]
        assert all(alive(pid) for pid in everything)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in everything):
            time.sleep(0.02)
        assert [pid for pid in everything if alive(pid)] == []
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
