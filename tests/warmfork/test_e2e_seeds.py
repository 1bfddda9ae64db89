"""Seeds through a real daemon and real JS: instances are forks of the seed, each with
its own identity; ``disableSeed`` and a disabled plugin start cold; init errors fail
the deploy. Plugins: runtime_v8 + warmfork (tests/warmfork/e2e.py)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from . import e2e

IDENTITY = """
addEventListener('fetch', (event) => {
  console.log('serving ' + new URL(event.request.url).pathname);
  event.respondWith(new Response('v1'));
});
"""


def test_instances_are_forks_of_the_seed_with_their_own_identity(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("ident", IDENTITY, {"worker": {"reservationCount": 2, "disposable": False}})
    (seed,) = e2e.wait_for("the seed", lambda: e2e.seeds(d, "ident"))
    assert e2e.ppid(e2e.ppid(seed["pid"])) == d.pid, "a seed is a child of the launcher"
    for i in range(4):
        assert d.request("ident", f"/r{i}").text == "v1"
    insts = e2e.wait_for(
        "two instances", lambda: len(e2e.instances(d, "ident")) >= 2 and e2e.instances(d, "ident")
    )
    assert {i["role"] for i in insts} == {"instance"}
    assert len({i["id"] for i in insts}) == len(insts)
    assert len({i["pid"] for i in insts}) == len(insts)
    for inst in insts:
        assert e2e.ppid(inst["pid"]) == seed["pid"], f"{inst['id']} is not a child of seed {seed['pid']}"
        assert inst["sandbox"]["annotations"]["noslate.instance"] == inst["id"]
        title = open(f"/proc/{inst['pid']}/cmdline", "rb").read().split(b"\0")[0].decode()  # noqa: SIM115
        assert title.endswith(f"#{inst['id']}"), title
    # the seed is no instance: the kernel lists only what serves requests
    assert seed["pid"] not in {i["pid"] for i in insts}
    # the CLI shows the same, with the role
    out = subprocess.run(
        [
            str(_noslate()),
            "instances",
            "--json",
            "--function",
            "ident",
            "--control",
            d.control_url,
            "--token",
            d.token,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert {i["id"]: i["role"] for i in json.loads(out.stdout)} == {i["id"]: "instance" for i in insts}
    # each instance logs under its own identity
    lines = e2e.wait_for(
        "the handler's log lines",
        lambda: [x for x in d.logs("ident") if x["message"].startswith("serving /r")],
    )
    assert {x["instance"] for x in lines} <= {i["id"] for i in insts}
    assert all(x["instance"] for x in lines)


def _noslate() -> Any:
    import conftest

    return conftest.VENV_BIN / "noslate"


def test_disable_seed_and_a_disabled_plugin_start_cold(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("cold", IDENTITY, {"worker": {"disableSeed": True}})
    assert d.request("cold").text == "v1"
    (inst,) = e2e.instances(d, "cold")
    assert inst["role"] == "cold"
    assert e2e.seeds(d, "cold") == []
    assert e2e.warmfork_stats(d)["forks"] == 0
    # a cold worker is a fork+exec of the launcher, not a child of any seed
    launcher = e2e.ppid(inst["pid"])
    assert e2e.ppid(launcher) == d.pid

    plain = e2e.start(daemon_factory, plugins=e2e.NO_WARMFORK)
    plain.deploy("cold", IDENTITY)
    assert plain.request("cold").text == "v1"
    (inst,) = e2e.instances(plain, "cold")
    assert inst["role"] == "cold"
    assert e2e.ppid(e2e.ppid(inst["pid"])) == plain.pid


STACK_DEPTH = """
function depth(n) { try { return depth(n + 1); } catch { return n; } }
addEventListener('fetch', e => e.respondWith(new Response(String(depth(0)))));
"""


def test_a_profile_with_its_own_v8_flags_starts_cold_and_gets_them(daemon_factory: Any) -> None:
    """V8 flags are fixed when the engine starts: a fork of a seed could not honour a
    profile's ``worker.v8Options``, so such a function is not seeded (and says why)."""
    d = e2e.start(daemon_factory)
    d.deploy("plain", STACK_DEPTH)
    d.deploy("flags", STACK_DEPTH, {"worker": {"v8Options": ["--stack-size=100"]}})
    plain, flagged = int(d.request("plain").text), int(d.request("flags").text)
    assert flagged * 3 < plain, (plain, flagged)  # a tenth of the default 984 KiB stack
    (inst,) = e2e.instances(d, "flags")
    assert inst["role"] == "cold"
    assert e2e.seeds(d, "flags") == []
    assert [s["function"] for s in e2e.seeds(d)] == ["plain"]
    said = [x["message"] for x in d.logs("flags") if "is not seeded" in x["message"]]
    assert len(said) == 1 and "worker.v8Options --stack-size=100" in said[0], said


INIT_THROWS = """
const table = {};
function setUp() {
  throw new TypeError('cannot configure the table: ' + Object.keys(table).length);
}
setUp();
addEventListener('fetch', (e) => e.respondWith(new Response('never')));
"""


def test_a_seed_whose_init_throws_fails_the_deploy(daemon_factory: Any) -> None:
    d = e2e.start(daemon_factory)
    d.deploy("fn", "addEventListener('fetch', e => e.respondWith(new Response('good')))")
    before = d.control("GET", "/v1/functions/fn").json()["version"]
    resp = d.deploy("fn", INIT_THROWS, filename="setup.js", check=False)
    assert resp.status_code == 422, resp.text
    text = resp.text
    assert "TypeError: cannot configure the table: 0" in text, text
    assert "setup.js @ 4 : 2" in text, f"no location in {text}"
    assert "Traceback" not in text
    # nothing stored: the previous version is still current and answers
    assert d.control("GET", "/v1/functions/fn").json()["version"] == before
    assert d.request("fn").text == "good"
    # a brand-new function whose init throws does not exist afterwards
    resp = d.deploy("new-fn", INIT_THROWS, filename="setup.js", check=False)
    assert resp.status_code == 422, resp.text
    assert d.control("GET", "/v1/functions/new-fn").status_code == 404
    assert e2e.seeds(d, "new-fn") == []
    assert [s["function"] for s in e2e.seeds(d)] == ["fn"]
