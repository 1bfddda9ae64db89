"""The nodejs runtime runs runtime_v8's Web API layer: the same globals, the same objects."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from plugins.runtime_node.node import CLEAN_ENV, find_node

from .harness import deploy, make_runtime, start

STRIP_JS = Path(__file__).parents[2] / "plugins" / "runtime_node" / "js" / "src" / "strip.js"

GLOBALS_PROBE = b"""
addEventListener("fetch", (event) => event.respondWith(Response.json({
  names: Object.getOwnPropertyNames(globalThis).sort(),
  // objects of the shared layer, not Node's (undici, node:buffer)
  requestIsOurs: String(Request).includes("[native code]") === false,
  bodyType: Object.prototype.toString.call(new Uint8Array(0)),
  ua: navigator.userAgent,
})));
"""


def aworker_globals() -> list[str]:
    """The global names user code sees on runtime_v8 (STPyV8), loaded in this process."""
    pytest.importorskip("STPyV8")
    from plugins.runtime_v8.worker import load

    loaded = load(b"addEventListener('fetch', () => {});", {})
    return json.loads(loaded.ctx.eval("JSON.stringify(Object.getOwnPropertyNames(globalThis).sort())"))


@pytest.mark.parametrize("snap", [True, False], ids=["snapshot", "plain"])
async def test_same_globals_as_aworker(tmp_path, snap):
    runtime, _ = make_runtime(tmp_path)
    fv = await deploy(runtime, GLOBALS_PROBE, "globals.js")
    worker = await start(runtime, fv, snapshot=snap)
    try:
        data = (await worker.request("GET", "/")).json()
    finally:
        worker.kill()
    assert data["requestIsOurs"] is True
    assert data["ua"].endswith("(aworker)") or "Noslate-Workers" in data["ua"]
    assert set(data["names"]) == set(aworker_globals())


def test_pristine_list_matches_the_node_binary():
    """strip.js writes out a fresh V8 context's globals: they must match this Node."""
    names = json.loads(
        subprocess.run(
            [find_node(), "-e", 'console.log(JSON.stringify(require("vm").runInNewContext("Object.getOwnPropertyNames(globalThis)")))'],
            env=CLEAN_ENV, capture_output=True, check=True, timeout=30,
        ).stdout
    )
    block = STRIP_JS.read_text().split("new Set([", 1)[1].split("]);", 1)[0]
    assert set(re.findall(r'"([^"]+)"', block)) == set(names)
