"""cluster: three daemons behind haproxy with the example config (deploy/haproxy).

- instance starts per function: ten functions, three rounds of one GET each, with the
  config's Host hash and with ``balance roundrobin`` (fresh daemons for each);
- client errors while a daemon is killed with SIGKILL, and while one drains (SIGTERM),
  under a steady keep-alive GET load through the balancer;
- drain-to-exit: seconds from SIGTERM to the daemon's exit, under that load;
- CPU per request through the balancer (haproxy + the daemons' process trees) against
  the same requests sent to one daemon directly, with ``wrk -t1 -c8``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import httpx

from bench import haproxy
from bench.common import KeepAlive, Skip, cpu_delta, figure, free_port, goal, section, tree_cpu_ms
from bench.context import Context
from bench.loadgen import wrk
from bench.ours import BASE_PLUGINS, Daemon
from bench.pgserver import Postgres, pg_bin

FUNCTIONS = [f"fn{i}" for i in range(10)]
HELLO = "export default { fetch() { return new Response('hello'); } };"


def _metrics_port(d: Daemon) -> int:
    info = json.loads((d.workdir / "state" / "daemon.json").read_text())
    return int(info["metrics_url"].rsplit(":", 1)[1])


def _cluster(ctx: Context, name: str, balance: str = "") -> tuple[list[Daemon], haproxy.Balancer]:
    daemons = []
    for i in range(3):  # fixed ports: a restarted daemon comes back where haproxy looks
        metrics = f"127.0.0.1:{free_port()}"
        d = Daemon(ctx.workdir(f"{name}-d{i}"), BASE_PLUGINS, {"server": {"metrics_bind": metrics}})
        d.data_bind = f"127.0.0.1:{free_port()}"
        daemons.append(d.start())
        for fn in FUNCTIONS:
            d.deploy(fn, HELLO, {"worker": {"replicaCountLimit": 5}}, filename="w.mjs")
    servers = [(f"127.0.0.1:{d.data_port}", _metrics_port(d)) for d in daemons]
    return daemons, haproxy.Balancer(ctx.workdir(f"{name}-lb"), servers, balance).start()


def _stop(daemons: list[Daemon], lb: haproxy.Balancer) -> None:
    lb.stop()
    for d in daemons:
        d.stop()


def _starts(daemons: list[Daemon], lb: haproxy.Balancer) -> float:
    conn = KeepAlive(lb.port, "fn0.localhost")
    try:
        for _ in range(3):
            for fn in FUNCTIONS:
                status, _, _ = conn.get("/", host=f"{fn}.localhost")
                if status != 200:
                    raise Skip(f"GET through haproxy answered {status}")
    finally:
        conn.close()
    live = sum(1 for d in daemons for i in d.instances() if i.get("state") != "stopped")
    return live / len(FUNCTIONS)


class _Load(haproxy.LoadThreads):
    def __init__(self, port: int, threads: int = 4) -> None:
        super().__init__(threads)
        self.port, self.ok, self.errors = port, 0, 0
        self.kinds: dict[object, int] = {}
        self.sample = ""

    def run(self, seed: int) -> None:
        conn: KeepAlive | None = None
        i = seed
        while not self.stop.is_set():
            i += 1
            try:
                conn = conn or KeepAlive(self.port, "fn0.localhost", timeout=10)
                status, body, _ = conn.get("/", host=f"{FUNCTIONS[i % len(FUNCTIONS)]}.localhost")
            except OSError as exc:
                self.errors += 1
                self.kinds[type(exc).__name__] = self.kinds.get(type(exc).__name__, 0) + 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if status == 200:
                self.ok += 1
            else:
                self.errors += 1
                self.kinds[status] = self.kinds.get(status, 0) + 1
                self.sample = self.sample or body[:300].decode(errors="replace")
        if conn is not None:
            conn.close()


def _cpu_per_request(pids: list[int], port: int, host: str, duration: float) -> tuple[float, float]:
    before = [tree_cpu_ms(p) for p in pids]
    result = wrk(port, host, duration=duration, threads=1, connections=8)
    after = [tree_cpu_ms(p) for p in pids]
    total = sum(sum(cpu_delta(b, a).values()) for b, a in zip(before, after, strict=True))
    requests = max(1, int(result.get("requests", 0)))
    return total / requests, float(result.get("rps", 0.0))


def run(ctx: Context) -> dict[str, Any]:
    if not haproxy.available():
        raise Skip("haproxy is not installed (Debian: haproxy)")
    p = ctx.params
    figs, notes = [], []
    rr_daemons, rr_lb = _cluster(ctx, "rr", balance="roundrobin")
    try:
        rr = _starts(rr_daemons, rr_lb)
    finally:
        _stop(rr_daemons, rr_lb)
    daemons, lb = _cluster(ctx, "hash")
    try:
        hashed = _starts(daemons, lb)
        figs.append(
            figure(
                "cluster.starts_per_function.hash", "instances per function, Host hash", [hashed], "instances"
            )
        )
        figs.append(
            figure(
                "cluster.starts_per_function.roundrobin",
                "instances per function, round-robin",
                [rr],
                "instances",
            )
        )
        goal(
            figs[0],
            "one instance per function (round-robin starts one on every daemon)",
            lambda f: f["median"] <= 1.0,
        )
        duration = max(2.0, p.wrk_duration)
        via_lb = [lb.proc.pid] + [d.proc.pid for d in daemons]
        lb_cpu, lb_rps = _cpu_per_request(via_lb, lb.port, "fn1.localhost", duration)
        direct = daemons[0]
        direct_cpu, direct_rps = _cpu_per_request(
            [direct.proc.pid], direct.data_port, "fn1.localhost", duration
        )
        label = "CPU per request via haproxy (and the daemons)"
        extra = {"rps": round(lb_rps, 1)}
        figs.append(figure("cluster.cpu_per_request.balancer", label, [lb_cpu], "ms", extra=extra))
        figs.append(
            figure(
                "cluster.cpu_per_request.direct", "CPU per request, one daemon directly", [direct_cpu], "ms",
                extra={"rps": round(direct_rps, 1)},
            )
        )  # fmt: skip
        drains, drain_errors = [], 0
        victim = daemons[2]
        for _ in range(3 if ctx.mode == "quick" else 10):
            with _Load(lb.port) as load:
                time.sleep(0.3)
                t0 = time.monotonic()
                victim.proc.send_signal(signal.SIGTERM)
                victim.proc.wait(60)
                drains.append(time.monotonic() - t0)
                time.sleep(0.2)
            drain_errors += load.errors
            victim.start()
            time.sleep(1.2)
        figs.append(figure("cluster.drain_to_exit", "SIGTERM to exit under load", drains, "s"))
        goal(figs[-1], "exit within 1 s of the last request", lambda f: f["max"] < 1.5)
        figs.append(figure("cluster.errors.drain", "client errors during drains", [drain_errors], "requests"))
        with _Load(lb.port) as load:
            time.sleep(1.0)
            os.kill(daemons[1].proc.pid, signal.SIGKILL)
            time.sleep(2.0)
        figs.append(
            figure(
                "cluster.errors.kill9", "client errors around kill -9 of a daemon", [load.errors], "requests",
                extra={"ok": load.ok, "kinds": {str(k): v for k, v in load.kinds.items()}},
            )
        )  # fmt: skip
        notes.append(
            "GETs through haproxy with the example config's retries; errors are non-200 or failed connections"
        )
    finally:
        _stop(daemons, lb)
    figs += _rollout(ctx, notes)
    return section("cluster", figs, notes)


def _rollout(ctx: Context, notes: list[str]) -> list[dict[str, Any]]:
    """Deploy through one of three daemons sharing a PostgreSQL registry; the time until
    the other two serve the new version (their control API reports it)."""
    if pg_bin() is None:
        notes.append("rollout not measured: PostgreSQL is not installed")
        return []
    pg = Postgres().init()
    daemons: list[Daemon] = []
    try:
        config = {"registry": {"backend": "postgres", "dsn": pg.dsn, "resync_interval": 60.0}}
        for i in range(3):
            d = Daemon(ctx.workdir(f"rollout-d{i}"), [*BASE_PLUGINS, "registry_postgres"], config)
            daemons.append(d.start())
        samples, after = [], []
        deployer = httpx.Client(
            base_url=daemons[0].control_url,
            headers={"authorization": f"Bearer {daemons[0].token}"},
            timeout=60,
        )
        pollers = [
            httpx.Client(base_url=d.control_url, headers={"authorization": f"Bearer {d.token}"})
            for d in daemons[1:]
        ]
        for n in range(5 if ctx.mode == "quick" else 20):
            t0 = time.perf_counter()
            body = {"code": HELLO.replace("hello", f"v{n}"), "filename": "w.mjs", "profile": {}}
            resp = deployer.put("/v1/functions/roll", json=body)
            t1 = time.perf_counter()
            if resp.status_code not in (200, 201):
                raise Skip(f"deploy failed: {resp.status_code} {resp.text[:200]}")
            version = resp.json()["version"]
            for client in pollers:
                while client.get("/v1/functions/roll").json().get("version") != version:
                    if time.perf_counter() - t0 > 10:
                        raise Skip("a deploy did not reach every daemon within 10 s")
                    time.sleep(0.002)
            samples.append((time.perf_counter() - t0) * 1000)
            after.append((time.perf_counter() - t1) * 1000)
        fig = figure("cluster.rollout", "deploy through one daemon to served by all three", samples, "ms")
        goal(fig, "p50 <= 200 ms", lambda f: f["median"] <= 200)
        spread = figure(
            "cluster.rollout.after_deploy", "from the deploy's answer to served by the other two", after, "ms"
        )
        notes.append(
            "rollout: the deploy itself (validation, the sandboxed esbuild job, the transaction) is the rest"
        )
        for client in [deployer, *pollers]:
            client.close()
        return [fig, spread]
    finally:
        for d in daemons:
            d.stop()
        pg.remove()
