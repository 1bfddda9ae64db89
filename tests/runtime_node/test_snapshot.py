"""Snapshot cache (hit, rebuild on new code or Node version), build failures, no-leak."""

from __future__ import annotations

import pytest

from kernel.errors import DeployError
from kernel.profile import parse_profile
from plugins.runtime_node import snapshot
from plugins.runtime_node.runtime import NodeRuntime, check_profile

from .harness import deploy, get_json, make_runtime, start

HELLO = b'addEventListener("fetch", (e) => e.respondWith(new Response("v1")));'
HELLO2 = b'addEventListener("fetch", (e) => e.respondWith(new Response("v2")));'


def blobs(runtime: NodeRuntime) -> list:
    return sorted(runtime.snapshots.root.glob("*/*.blob"))


async def test_cache_hit_and_rebuild_on_new_code(tmp_path):
    runtime, kernel = make_runtime(tmp_path)
    fv = await deploy(runtime, HELLO, "a.js")
    assert runtime.snapshots.builds == 1 and len(blobs(runtime)) == 1
    first = blobs(runtime)[0]
    mtime = first.stat().st_mtime_ns
    # the same code again (e.g. a redeploy or a daemon restart): no rebuild
    runtime2, _ = make_runtime(tmp_path)
    await deploy(runtime2, HELLO, "a.js")
    assert runtime2.snapshots.builds == 0 and runtime2.snapshots.hits == 1
    assert first.stat().st_mtime_ns == mtime
    # new code: a new blob; both answer from their own snapshot
    fv2 = await deploy(runtime, HELLO2, "a.js")
    assert runtime.snapshots.builds == 2 and len(blobs(runtime)) == 2
    for version, text in ((fv, b"v1"), (fv2, b"v2")):
        worker = await start(runtime, version)
        try:
            assert worker.hello.info["snapshot"] is True
            assert (await worker.request("GET", "/")).body == text
        finally:
            worker.kill()
    assert any("built the startup snapshot" in m for _f, _l, m in kernel.lines)


async def test_new_node_version_rebuilds_and_prune_drops_old(tmp_path):
    runtime, _ = make_runtime(tmp_path)
    await deploy(runtime, HELLO, "a.js")
    runtime.node_version = runtime.node_version + "-other"  # as after upgrading the pinned Node
    fv = await deploy(runtime, HELLO, "a.js")
    assert runtime.snapshots.builds == 2
    assert {b.parent.name for b in blobs(runtime)} == {
        runtime.node_version,
        runtime.node_version[: -len("-other")],
    }
    key = snapshot.snapshot_key(runtime.node_version, runtime.flags(fv.profile), fv.artifact, {})
    assert runtime.snapshots.prune(runtime.node_version, {key}) == 1
    assert [b.stem for b in blobs(runtime)] == [key]


async def test_missing_blob_is_rebuilt_at_start(tmp_path):
    runtime, _ = make_runtime(tmp_path)
    fv = await deploy(runtime, HELLO, "a.js")
    for b in blobs(runtime):
        b.unlink()
    worker = await start(runtime, fv)
    try:
        assert worker.hello.info["snapshot"] is True
        assert (await worker.request("GET", "/")).body == b"v1"
    finally:
        worker.kill()
    assert runtime.snapshots.builds == 2


@pytest.mark.parametrize(
    ("code", "message", "where"),
    [
        (
            b"let a = 1;\nnull.boom;\naddEventListener('fetch', () => {});",
            "top-level code failed: TypeError",
            "w.js:2:",
        ),
        (
            b"addEventListener('install', () => { throw new Error('no install'); });\n"
            b"addEventListener('fetch', () => {});",
            "install event handler threw: Error: no install",
            "",
        ),
        (b"const x = 1;", "no fetch handler", ""),
        (b"export default { nofetch() {} };", "has no fetch() method", ""),
    ],
    ids=["top-level-throw", "install-throw", "no-handler", "module-without-fetch"],
)
async def test_build_failure_fails_the_deploy_with_the_users_error(tmp_path, code, message, where):
    runtime, _ = make_runtime(tmp_path)
    with pytest.raises(DeployError) as info:
        await deploy(runtime, code, "w.js" if b"export" not in code else "w.mjs")
    assert message in str(info.value)
    assert where in info.value.location
    assert blobs(runtime) == []


async def test_syntax_error_names_file_line_column(tmp_path):
    runtime, _ = make_runtime(tmp_path)
    with pytest.raises(DeployError) as info:
        await deploy(runtime, b"addEventListener('fetch', (e) => {\n  let = ;\n});", "bad.js")
    assert info.value.location.startswith("bad.js:2:")


def test_handler_profile_is_rejected():
    with pytest.raises(DeployError, match="`handler`"):
        check_profile(parse_profile({"name": "f", "runtime": "nodejs", "handler": "index.handler"}))
    with pytest.raises(DeployError, match="`initializer`"):
        check_profile(parse_profile({"name": "f", "runtime": "nodejs", "initializer": "index.init"}))


LEAK_PROBE = b"""
const probes = {};
addEventListener("fetch", (event) => event.respondWith((async () => {
  const g = globalThis;
  const names = ["process", "Buffer", "global", "require", "module", "exports", "__filename", "__dirname",
    "setImmediate", "clearImmediate", "fs", "child_process", "WebSocket"];
  const seen = {};
  for (const n of names) seen[n] = typeof g[n];
  seen.bareProcess = typeof process; seen.bareBuffer = typeof Buffer; seen.bareRequire = typeof require;
  const tries = {};
  for (const [k, f] of Object.entries({
    dynImport: () => import("node:fs"),
    evalImport: () => (0, eval)("import('node:child_process')"),
    fnImport: () => new Function("return import('node:os')")(),
  })) {
    try { await f(); tries[k] = "LEAK"; } catch (e) { tries[k] = e.name; }
  }
  // global lexical bindings and the Function constructor reach nothing of Node either
  for (const n of ["Buffer", "process", "require", "global"]) {
    seen["eval_" + n] = (0, eval)("typeof " + n);
    seen["fn_" + n] = Function("return typeof " + n)();
  }
  return Response.json({ seen, tries, timer: typeof setTimeout(() => {}, 0), ua: navigator.userAgent });
})()));
"""


@pytest.mark.parametrize("snap", [True, False], ids=["snapshot", "plain"])
async def test_no_node_globals_or_module_loading(tmp_path, snap):
    data = await get_json(tmp_path, LEAK_PROBE, "probe.js", snapshot=snap)
    assert set(data["seen"].values()) == {"undefined"}, data["seen"]
    assert data["tries"] == {"dynImport": "TypeError", "evalImport": "TypeError", "fnImport": "TypeError"}
    assert data["timer"] == "number"
    assert "nodejs" in data["ua"]
