"""registry_postgres: three daemons sharing one real PostgreSQL on loopback.

A deploy through one daemon is served by the others with the same version within a
second; a removal anywhere removes it everywhere; with the database stopped every
daemon keeps serving (a restarted one from its local cache) and deploys get 503
naming the database; a notification that never came is healed by the resync; a bad
DSN, a database never reached and a schema from a newer noslate stop the start.
"""

from __future__ import annotations

import time
from pathlib import Path

import conftest
import pytest

from cluster.servers import Postgres, pg_bin

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed (Debian: postgresql)")
PLUGINS = [*conftest.DEFAULT_PLUGINS, "registry_postgres"]
PY = {"runtime": "pytest"}


def code(text: str) -> str:
    return f'def handle(req, body, host):\n    return 200, [], [b"{text}"]\n'


@pytest.fixture
def pg(tmp_path: Path):
    server = Postgres().init()
    yield server
    server.remove()


def start(tmp: Path, dsn: str, resync: float = 2.0, check: bool = True) -> conftest.Daemon:
    tmp.mkdir(parents=True, exist_ok=True)
    config = {
        "registry": {"backend": "postgres", "dsn": dsn, "resync_interval": resync, "connect_timeout": 2.0}
    }
    d = conftest.Daemon(tmp, config, PLUGINS, {})
    return d.start() if check else d


def wait_for(predicate, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError("timed out")


def version(d: conftest.Daemon, name: str) -> str | None:
    r = d.control("GET", f"/v1/functions/{name}")
    return r.json()["version"] if r.status_code == 200 else None


def test_a_deploy_anywhere_is_served_everywhere_with_one_version(tmp_path: Path, pg: Postgres) -> None:
    a, b, c = (start(tmp_path / n, pg.dsn, resync=60.0) for n in "abc")  # notifications only
    try:
        a.deploy("shared", code("v1"), PY)
        v1 = version(a, "shared")
        took = [wait_for(lambda d=d: version(d, "shared") == v1) for d in (b, c)]
        assert max(took) < 1.0, took
        assert [d.request("shared").text for d in (a, b, c)] == ["v1"] * 3
        b.deploy("shared", code("v2"), PY)  # through another daemon
        v2 = version(b, "shared")
        assert v2 != v1
        wait_for(lambda: version(a, "shared") == v2 and version(c, "shared") == v2)
        assert [d.request("shared").text for d in (a, b, c)] == ["v2"] * 3
        assert c.control("DELETE", "/v1/functions/shared").status_code in (200, 204)
        took = [wait_for(lambda d=d: d.request("shared").status_code == 404) for d in (a, b)]
        assert max(took) < 1.0, took
        assert pg.query("SELECT count(*) FROM noslate_functions") == [(0,)]
    finally:
        for d in (a, b, c):
            d.stop()


def test_a_database_outage_keeps_serving_and_refuses_deploys(tmp_path: Path, pg: Postgres) -> None:
    a, b, c = (start(tmp_path / n, pg.dsn) for n in "abc")
    try:
        a.deploy("steady", code("up"), PY)
        wait_for(lambda: b.request("steady").text == "up" and c.request("steady").text == "up")
        pg.stop()
        assert [d.request("steady").text for d in (a, b, c)] == ["up"] * 3
        resp = a.deploy("steady", code("new"), PY, check=False)
        assert resp.status_code == 503, resp.text
        where = f"postgres at 127.0.0.1:{pg.port}/noslate"
        assert where in resp.json()["error"] and "unavailable" in resp.json()["error"]
        assert a.request("steady").text == "up"  # nothing half-written
        assert a.control("DELETE", "/v1/functions/steady").status_code == 503
        b.restart()  # from its local cache
        assert b.request("steady").text == "up"
        pg.start()
        a.deploy("steady", code("back"), PY)
        wait_for(
            lambda: b.request("steady").text == "back" and c.request("steady").text == "back", timeout=10
        )
    finally:
        for d in (a, b, c):
            d.stop()


def test_a_missed_notification_is_healed_by_the_resync(tmp_path: Path, pg: Postgres) -> None:
    a = start(tmp_path / "a", pg.dsn, resync=1.0)
    try:
        a.deploy("quiet", code("here"), PY)
        pg.query("DELETE FROM noslate_functions WHERE name = 'quiet'")  # no NOTIFY
        wait_for(lambda: a.request("quiet").status_code == 404, timeout=5)
    finally:
        a.stop()


def test_bad_dsn_unreachable_database_and_newer_schema_stop_the_start(tmp_path: Path, pg: Postgres) -> None:
    wrong = pg.dsn.replace("noslate@", "nobody:s3cret@")
    d = start(tmp_path / "wrong", wrong, check=False)
    with pytest.raises(RuntimeError) as info:
        d.start()
    assert d.proc.returncode == 2 and f"127.0.0.1:{pg.port}" in str(info.value)
    assert (
        "s3cret" not in str(info.value) and "s3cret" not in (tmp_path / "wrong" / "daemon.stderr").read_text()
    )
    unreachable = pg.dsn.replace(str(pg.port), "1")
    d = start(tmp_path / "never", unreachable, check=False)
    with pytest.raises(RuntimeError) as info:
        d.start()
    assert d.proc.returncode == 2 and "never synced" in str(info.value), str(info.value)
    ok = start(tmp_path / "ok", pg.dsn)
    ok.stop()
    pg.query("INSERT INTO noslate_schema VALUES (99)")
    d = start(tmp_path / "newer", pg.dsn, check=False)
    with pytest.raises(RuntimeError) as info:
        d.start()
    assert d.proc.returncode == 2 and "schema is version 99, newer than" in str(info.value)


def test_the_postgres_backend_is_registered_by_its_hook() -> None:
    from plugins.registry_postgres.plugin import noslate_registry_backends

    (spec,) = noslate_registry_backends()
    assert spec.name == "postgres" and callable(spec.factory)
