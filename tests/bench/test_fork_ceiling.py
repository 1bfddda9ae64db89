"""bench.apps.fork_ceiling: the lean fork-per-request reference answers through real HTTP."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import peers  # noqa: E402
from bench.common import KeepAlive  # noqa: E402
from bench.workloads import HELLO  # noqa: E402


def _running_children(pid: int) -> list[int]:
    """Children of ``pid`` that have not exited (zombies wait for the next reap)."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out.append(int(child))
    return out


@pytest.mark.parametrize("mode", ["fork", "spare"])
def test_every_request_is_answered_by_a_child_of_the_seed(mode: str, tmp_path: Path) -> None:
    server = peers.fork_ceiling_server(tmp_path, mode).start_and_wait()
    try:
        conn = KeepAlive(server.port, "localhost")
        try:
            for _ in range(5):
                status, body, _seconds = conn.get("/")
                assert (status, body) == (200, HELLO.encode())
        finally:
            conn.close()
        seed = int(Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()[0])
        # every answered child exits (reaped at the next request); a spare waits
        expected = 1 if mode == "spare" else 0
        deadline = time.monotonic() + 5
        while len(running := _running_children(seed)) != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(running) == expected, running
    finally:
        server.stop()
