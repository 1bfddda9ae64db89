"""The opt-in allow-list seccomp mode through a real daemon, under concurrent load:
JS workers (forked and cold, a fresh instance per request in disposable mode) and the
Python probe keep working; calls outside the list fail with EPERM, never a kill."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .support import ISOLATION, JS_HELLO, PROBE_CODE, SKIP, assert_sandboxed, cli_instances, start_daemon

pytestmark = [SKIP, pytest.mark.root, pytest.mark.slow]

JS_BUSY = """
addEventListener('fetch', (event) => {
  const parts = [];
  for (let i = 0; i < 2000; i++) parts.push({ i, s: 'x'.repeat(i % 50) });
  event.respondWith(new Response(JSON.stringify(parts.length) + Math.random()));
});
"""
MEM = {"resourceLimit": {"memory": 160 << 20}}


def test_allowlist_mode_serves_under_load_and_denies_with_eperm(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "d", ISOLATION, {"isolation_seccomp": {"mode": "allowlist"}})
    try:
        daemon.deploy("busy", JS_BUSY, {**MEM, "worker": {"maxActivateRequests": 4}})
        daemon.deploy("once", JS_HELLO, {**MEM, "worker": {"disposable": True}})
        daemon.deploy("cold", JS_HELLO, {**MEM, "worker": {"disableSeed": True}})
        daemon.deploy("probe", PROBE_CODE, {**MEM, "runtime": "isoprobe"}, filename="p.py")

        def hit(i: int) -> int:
            name = ("busy", "busy", "once", "cold")[i % 4]
            return daemon.request(name, f"/{i}", timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(hit, range(80)))
        assert codes == [200] * 80, (codes, daemon.stderr())
        for inst in cli_instances(daemon):
            if inst["state"] == "ready":
                assert inst["sandbox"]["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
                assert_sandboxed(inst["pid"], inst["id"])
        r = daemon.request("probe", "/", timeout=30)
        assert r.status_code == 200, r.text
        calls: dict[str, Any] = r.json()["syscalls"]
        assert calls["io_uring_setup"] == calls["keyctl"] == calls["socket_inet"] == "EPERM", calls
        assert calls["getpid"] == "ok"
        assert not [line for line in daemon.logs("busy") if line.get("level") == "error"]
    finally:
        try:
            daemon.stop(timeout=20)
        except Exception:
            daemon.kill9()
