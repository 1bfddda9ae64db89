"""warmfork below HTTP: the launcher, a real V8 seed and the instance, without a daemon.

Used by ``bench/warmfork_bench.py`` as same-run baselines:

* ``bare_fork``: ``os.fork()`` of a small Python process until the child's first byte
  arrives (the machine's floor for "a new process answers");
* ``fork_to_response``: ``Seed.fork_instance`` of a real runtime_v8 seed (trivial
  script) -> Hello -> one request frame -> its response, with the CPU time the new
  instance used (``/proc/<pid>/schedstat``) and its minor page faults.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

CODE = b"addEventListener('fetch', e => e.respondWith(new Response('hi')))"
INIT = {
    "function": "bench",
    "version": "v1",
    "instance": "bench-seed",
    "env": {},
    "v8_options": [],
    "limits": {},
    "log_level": "info",
}


def bare_fork(runs: int) -> list[float]:
    """ms from ``os.fork()`` to the child's first byte on a pipe (child exits at once)."""
    out = []
    for _ in range(runs):
        r, w = os.pipe()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.write(w, b"x")
            os._exit(0)
        os.read(r, 1)
        out.append((time.perf_counter() - t0) * 1000)
        os.close(r)
        os.close(w)
        os.waitpid(pid, 0)
        time.sleep(0.005)
    return out


def _proc_cpu(pid: int) -> tuple[float, int]:
    """(CPU ms, minor faults) of ``pid`` so far."""
    with open(f"/proc/{pid}/schedstat") as f:
        cpu_ms = int(f.read().split()[0]) / 1e6
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return cpu_ms, int(stat[stat.rfind(")") + 2 :].split()[7])


async def _one(seed: Any, i: int) -> dict[str, float]:
    import trio

    from kernel import protocol as p

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    t0 = time.perf_counter()
    try:
        proc = await seed.fork_instance(
            entry="plugins.runtime_v8.worker:serve",
            payload={**INIT, "instance": f"bench-{i}"},
            channel_fd=theirs.fileno(),
        )
    finally:
        theirs.close()
    sock = trio.socket.from_stdlib_socket(ours)
    frames = p.FrameBuffer()
    out: dict[str, float] = {}
    with trio.fail_after(10):
        while "hello" not in out:
            for f in frames.feed(await sock.recv(65536)):
                if isinstance(f, p.Hello):
                    out["hello"] = (time.perf_counter() - t0) * 1000
        await sock.send(p.encode(p.Request(1, "GET", "http://bench/", [], False)))
        while "response" not in out:
            for f in frames.feed(await sock.recv(65536)):
                if isinstance(f, p.Response | p.Failure):
                    out["response"] = (time.perf_counter() - t0) * 1000
        out["cpu"], out["faults"] = _proc_cpu(proc.pid)
        sock.close()
        await proc.wait()
    out["seed_fork"] = proc.timings.get("seed_fork_ms", 0.0)
    return out


def fork_to_response(runs: int) -> list[dict[str, float]]:
    """Per fork: ``hello``/``response`` ms, the instance's ``cpu`` ms and ``faults``."""
    import trio

    from kernel.launcher.client import Launcher

    async def main() -> list[dict[str, float]]:
        launcher = await Launcher.start(preload=["plugins.runtime_v8.preload"], plugins=False)
        async with launcher:
            seed = await launcher.fork_seed(
                entry="plugins.runtime_v8.worker:load", payload={"artifact": CODE, "init": INIT}
            )
            results = []
            for i in range(runs + 3):
                r = await _one(seed, i)
                if i >= 3:
                    results.append(r)
                await trio.sleep(0.005)
            seed.kill()
            return results

    return trio.run(main)
