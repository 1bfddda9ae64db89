"""Every case of ../shared/conformance/cases.json against the worker directly.

The harness plays the kernel; for ``cpu_limit_ms`` cases it also plays the kernel's
CPU watchdog (SIGKILL once the instance used more CPU than the limit while a request
is in flight) and starts a fresh instance for the next request, as the kernel does.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import trio
from conformance import CASE_IDS, CASES, CONFORMANCE, body_file

from .harness import Reply, Worker, start_worker

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


async def watchdog(w: Worker, limit_ms: float, reply: Reply) -> None:
    base = cpu_ms(w.proc.pid)
    while not reply.done.is_set():
        await trio.sleep(0.01)
        try:
            if cpu_ms(w.proc.pid) - base > limit_ms:
                w.kill()
                return
        except FileNotFoundError:
            return


def check(expect: dict[str, Any], reply: Reply, killed: bool) -> None:
    status = 500 if killed else reply.status  # 500: what the kernel answers for a killed instance
    if "status" in expect:
        assert status == expect["status"], (reply.failure, reply.body[:500])
    if "status_range" in expect:
        lo, hi = expect["status_range"]
        assert lo <= status <= hi
    if killed:
        return
    for name, value in expect.get("headers", {}).items():
        assert reply.headers.get(name.lower()) == value, (name, reply.headers)
    text = (
        reply.body.decode(errors="replace")
        if reply.head
        else (reply.failure.message if reply.failure else "")
    )
    if "body" in expect:
        assert text == expect["body"]
    if "body_json" in expect:
        assert json.loads(text) == expect["body_json"]
    for bad in expect.get("body_excludes", []):
        assert bad not in text
        if reply.failure is not None:
            assert bad not in reply.failure.message


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_case(case: dict[str, Any], nursery: trio.Nursery) -> None:
    if not CASES:
        pytest.skip("no conformance cases on this machine")
    path = CONFORMANCE / case["worker"]
    code = path.read_text()
    w = await start_worker(nursery, code, path.name)
    try:
        for req in case["requests"]:
            body = None
            if "body" in req:
                body = req["body"].encode()
            elif "body_file" in req:
                body = body_file(req["body_file"])
            headers = [("x-test", "t1"), ("user-agent", "conformance/1")]
            headers += [(k, v) for k, v in req.get("headers", {}).items()]
            reply = await w.start_request(req["method"], req["path"], headers=headers, body=body)
            killed = False
            with trio.fail_after(max(5.0, req["expect"].get("within_ms", 0) / 1000 + 2)):
                if case.get("cpu_limit_ms"):
                    await watchdog(w, case["cpu_limit_ms"], reply)
                    killed = w.proc.poll() is not None or (reply.head is None and reply.failure is None)
                    if killed:
                        await w.proc.wait()
                await reply.done.wait()
                if not killed:
                    await reply.settled.wait()
            check(req["expect"], reply, killed)
            if killed:
                w = await start_worker(nursery, code, path.name)
    finally:
        w.kill()
