"""The nodejs runtime runs runtime_v8's Web API layer: the same globals, the same objects."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.runtime_node.node import CLEAN_ENV, find_node

from .harness import get_json

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


AWORKER_GLOBALS = """
import sys
from plugins.runtime_v8.worker import load
loaded = load(b"addEventListener('fetch', () => {});", {})
sys.stdout.write(loaded.ctx.eval("JSON.stringify(Object.getOwnPropertyNames(globalThis).sort())"))
"""


def pristine() -> set[str]:
    """The ECMAScript built-in names strip.js keeps."""
    block = STRIP_JS.read_text().split("new Set([", 1)[1].split("]);", 1)[0]
    return set(re.findall(r'"([^"]+)"', block))


def aworker_globals() -> list[str]:
    """The global names user code sees on runtime_v8 (STPyV8, in its own process)."""
    pytest.importorskip("STPyV8")
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", AWORKER_GLOBALS], cwd=root, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("snap", [True, False], ids=["snapshot", "plain"])
async def test_same_globals_as_aworker(tmp_path, snap):
    data = await get_json(tmp_path, GLOBALS_PROBE, "globals.js", snapshot=snap)
    assert data["requestIsOurs"] is True
    assert data["ua"] == "Noslate-Workers/0.1 (nodejs)"
    ours, theirs = set(data["names"]), set(aworker_globals())
    # the same Web API surface; the engines' ECMAScript built-ins may differ by V8 version
    assert ours - pristine() == theirs - pristine()
    assert theirs <= ours


HMAC_PROBE = b"""
addEventListener("fetch", (event) => event.respondWith((async () => {
  const enc = (s) => new TextEncoder().encode(s);
  const alg = { name: "HMAC", hash: "SHA-384" };
  const key = await crypto.subtle.importKey("raw", enc("k3y"), alg, false, ["sign", "verify"]);
  const mac = await crypto.subtle.sign("HMAC", key, enc("payload"));
  const hex = [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const pw = await crypto.subtle.importKey("raw", enc("pw"), "PBKDF2", false, ["deriveBits"]);
  const ikm = await crypto.subtle.importKey("raw", enc("ikm"), "HKDF", false, ["deriveBits"]);
  const bits = async (a, k) => [...new Uint8Array(await crypto.subtle.deriveBits(a, k, 256))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return Response.json({
    hex, ok: await crypto.subtle.verify("HMAC", key, mac, enc("payload")),
    pbkdf2: await bits({ name: "PBKDF2", hash: "SHA-256", salt: enc("s"), iterations: 3 }, pw),
    hkdf: await bits({ name: "HKDF", hash: "SHA-512", salt: enc("s"), info: enc("i") }, ikm),
  });
})()));
"""


async def test_hmac_pbkdf2_hkdf_through_the_node_host(tmp_path):
    data = await get_json(tmp_path, HMAC_PROBE, "hmac.js", snapshot=False)
    prk = hmac.new(b"s", b"ikm", hashlib.sha512).digest()
    assert data == {
        "hex": hmac.new(b"k3y", b"payload", hashlib.sha384).hexdigest(),
        "ok": True,
        "pbkdf2": hashlib.pbkdf2_hmac("sha256", b"pw", b"s", 3, 32).hex(),
        "hkdf": hmac.new(prk, b"i\x01", hashlib.sha512).digest()[:32].hex(),  # RFC 5869, one block
    }


def test_pristine_list_matches_the_node_binary():
    """strip.js writes out a fresh V8 context's globals: they must match this Node."""
    script = 'console.log(JSON.stringify(require("vm").runInNewContext("Object.getOwnPropertyNames(this)")))'
    argv = [find_node(), "-e", script]
    out = subprocess.run(argv, env=CLEAN_ENV, capture_output=True, check=True, timeout=30)
    names = json.loads(out.stdout)
    assert pristine() == set(names)


def test_a_stale_host_bundle_is_rebuilt_the_same():
    """dist/host.js is a build output: older than a source (e.g. runtime_v8's js/src), it is rebuilt."""
    from plugins.runtime_node import hostjs

    before = hostjs.ensure().read_bytes()
    os.utime(hostjs.HOST_BUNDLE, (0, 0))  # older than every source
    assert hostjs.stale()
    hostjs.ensure()
    assert not hostjs.stale()
    assert hostjs.HOST_BUNDLE.read_bytes() == before  # esbuild output is deterministic
