"""End to end through a real ``noslate serve``: a memory hog is OOM-killed in its cgroup,
its request gets a 5xx, the next request works, other functions are untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import V1_SKIP, unique_root

conftest = pytest.importorskip("conftest", reason="tests/conftest.py (daemon fixture) is missing")
DEFAULT_PLUGINS = conftest.DEFAULT_PLUGINS
plugin_available = conftest.plugin_available

pytestmark = [pytest.mark.skipif(bool(V1_SKIP), reason=V1_SKIP), pytest.mark.root, pytest.mark.slow]

LIMIT = 96 << 20

PY_HOG = """
def handle(req, body, host):
    if req["url"].endswith("/hog"):
        chunks = []
        for _ in range(256):
            chunks.append(b"\\x01" * (8 << 20))
        return 200, [], [b"survived"]
    return 200, [], [b"alive"]
"""

PY_CALM = """
def handle(req, body, host):
    return 200, [], [b"calm"]
"""

JS_HOG = """
addEventListener('fetch', (event) => {
  if (event.request.url.endsWith('/hog')) {
    const keep = [];
    for (;;) keep.push(new Array(1 << 20).fill(7));
  }
  event.respondWith(new Response('alive'));
});
"""


def _instances(daemon: Any, function: str) -> list[dict[str, Any]]:
    r = daemon.control("GET", "/v1/instances", params={"function": function})
    r.raise_for_status()
    return [i for i in r.json()["instances"] if i["function"] == function]


def _memory_dir(cgroups_path: str) -> Path:
    return Path("/sys/fs/cgroup/memory") / cgroups_path.lstrip("/")


def _run_scenario(daemon: Any, hog: tuple[str, dict[str, Any], str], root: str) -> None:
    code, profile, filename = hog
    daemon.deploy("hog", code, {**profile, "resourceLimit": {"memory": LIMIT}}, filename=filename)
    daemon.deploy("calm", PY_CALM, {"runtime": "pytest"}, filename="w.py")
    assert daemon.request("calm", "/").text == "calm"
    [calm] = _instances(daemon, "calm")
    assert daemon.request("hog", "/").text == "alive"
    [inst] = [i for i in _instances(daemon, "hog") if i["state"] != "stopped"]
    linux = inst["sandbox"]["linux"]
    assert linux["resources"]["memory_limit"] == LIMIT
    assert f"/{root}/daemon-{daemon.pid}-" in linux["cgroupsPath"]
    mem_dir = _memory_dir(linux["cgroupsPath"])
    assert (mem_dir / "memory.limit_in_bytes").read_text().strip() == str(LIMIT)
    assert str(inst["pid"]) in (mem_dir / "cgroup.procs").read_text().split()

    r = daemon.request("hog", "/hog", timeout=60)
    assert 500 <= r.status_code < 600, r.text
    assert "memory" in r.text
    assert daemon.request("hog", "/").text == "alive"  # a fresh instance serves again
    lines = [line["message"] for line in daemon.logs("hog")]
    assert any("killed for memory" in m and str(LIMIT) in m for m in lines), lines
    metrics = daemon.control("GET", "/metrics").text
    assert 'noslate_oom_kills_total{function="hog"} 1.0' in metrics
    assert not mem_dir.exists()  # the dead instance's cgroup is gone
    # The other function kept its instance and answers.
    assert daemon.request("calm", "/").text == "calm"
    assert [i["pid"] for i in _instances(daemon, "calm")] == [calm["pid"]]


def _assert_tree_gone(root: str) -> None:
    left = [p for p in Path("/sys/fs/cgroup").glob(f"*/{root}")] + list(
        Path("/sys/fs/cgroup/memory").glob(f"**/{root}")
    )
    assert not left, left


def test_python_worker_memory_hog_gets_5xx_and_the_function_recovers(daemon_factory: Any) -> None:
    root = unique_root()
    daemon = daemon_factory(
        config={"plugins": {"isolation_cgroup": {"root": root}}},
        plugins=[*DEFAULT_PLUGINS, "isolation_cgroup"],
    )
    _run_scenario(daemon, (PY_HOG, {"runtime": "pytest"}, "w.py"), root)
    assert daemon.stop() == 0
    _assert_tree_gone(root)


@pytest.mark.skipif(not plugin_available("runtime_v8"), reason="runtime_v8 plugin not built yet")
def test_js_memory_hog_gets_5xx_and_the_function_recovers(daemon_factory: Any) -> None:
    root = unique_root()
    plugins = [*DEFAULT_PLUGINS, "isolation_cgroup", "runtime_v8"]
    if plugin_available("warmfork"):
        plugins.append("warmfork")
    daemon = daemon_factory(config={"plugins": {"isolation_cgroup": {"root": root}}}, plugins=plugins)
    _run_scenario(daemon, (JS_HOG, {}, "index.js"), root)
    assert daemon.stop() == 0
    _assert_tree_gone(root)
