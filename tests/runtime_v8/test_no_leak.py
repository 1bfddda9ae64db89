# ruff: noqa: E501  (embedded JavaScript)
"""Escape probes: nothing of Python, STPyV8, the file system or the host is reachable."""

from __future__ import annotations

import trio

from .harness import start_worker

PROBE = r"""
addEventListener("fetch", (event) => event.respondWith((async () => {
  const out = {};
  const g = Function("return this")();
  out.sameGlobal = g === globalThis && (0, eval)("this") === globalThis;
  out.keys = Object.getOwnPropertyNames(globalThis);
  out.symbols = Object.getOwnPropertySymbols(globalThis).length;
  const chain = [];
  for (let p = Object.getPrototypeOf(globalThis); p; p = Object.getPrototypeOf(p)) chain.push(...Object.getOwnPropertyNames(p));
  out.chain = chain;
  out.viaCtor = ({}).constructor.constructor("return Object.getOwnPropertyNames(this).length")() === out.keys.length;
  for (const spec of ["fs", "node:fs", "/etc/passwd", "data:text/javascript,export default 1"]) {
    try { await import(spec); out["import:" + spec] = "loaded"; } catch (e) { out["import:" + spec] = e.name; }
  }
  // stack-trace API tricks: no host function or receiver is handed out
  const seen = [];
  Error.prepareStackTrace = (err, sites) => {
    for (const s of sites) seen.push({ fn: typeof s.getFunction(), self: typeof s.getThis(), file: String(s.getFileName()) });
    return "custom";
  };
  const poke = async (f) => { try { await f(); } catch (e) { e.stack; } };
  await poke(() => crypto.subtle.digest("SHA-256", 1));
  await poke(() => new Headers([["bad"]]));
  await poke(() => noslate.kvStorages.open(""));
  await poke(() => new Response(new ReadableStream({ pull() { throw new Error("x"); } })).text());
  await poke(() => { setTimeout(() => { throw new Error("timer"); }); });
  Error.prepareStackTrace = undefined;
  out.sites = seen;
  // sloppy caller chains stop at the runtime (strict)
  let caller = "none";
  function sloppy() { caller = sloppy.caller === null ? "null" : typeof sloppy.caller; }
  new EventTarget().addEventListener("x", sloppy);
  queueMicrotask(sloppy);
  await new Promise((r) => setTimeout(r, 1));
  out.caller = caller;
  const timerCaller = await new Promise((r) => setTimeout(function t() { r(t.caller === null ? "null" : typeof t.caller); }, 0));
  out.timerCaller = timerCaller;
  let err;
  try { null.x; } catch (e) { err = e; }
  out.stack = err.stack;
  out.fnSources = [fetch, setTimeout, Response, crypto.subtle.digest].map((f) => String(f).slice(0, 200)).join("\n");
  out.jsonStack = (() => { try { JSON.parse("{"); } catch (e) { return e.stack; } })();
  return Response.json(out);
})()));
"""

FORBIDDEN = (
    "process",
    "require",
    "module",
    "exports",
    "Buffer",
    "__dirname",
    "__filename",
    "Deno",
    "Bun",
    "__noslate_boot",
    "host",
    "bridge",
    "python",
    "STPyV8",
    "JSContext",
    "__host",
    "global",
    "os",
)
HOST_WORDS = ("/work", ".py", "site-packages", "python", "STPyV8", "Traceback", "/usr/", "/root", "plugins/")


async def test_nothing_of_the_host_is_reachable(nursery: trio.Nursery) -> None:
    w = await start_worker(nursery, PROBE)
    r = await w.request()
    assert r.status == 200, r.failure
    out = r.json()
    assert out["sameGlobal"] is True and out["viaCtor"] is True
    leaked = [k for k in out["keys"] if k in FORBIDDEN or k.startswith("_")]
    assert leaked == []
    assert out["symbols"] == 0
    assert set(out["chain"]) <= {"constructor", *dir_object_proto()}
    for spec in ("fs", "node:fs", "/etc/passwd", "data:text/javascript,export default 1"):
        assert out[f"import:{spec}"] != "loaded"
    assert out["sites"], "the probes must have produced stack frames"
    for site in out["sites"]:
        assert site["fn"] == "undefined" or site["file"] == "worker.js", site
        assert site["self"] in ("undefined", "object") and (
            site["self"] == "undefined" or site["file"] == "worker.js"
        )
        assert site["file"] in ("worker.js", "noslate:runtime", "null", "undefined"), site
    assert out["caller"] == "null" and out["timerCaller"] == "null"
    text = r.text()
    for word in HOST_WORDS:
        assert word not in text, word
    assert "worker.js:" in out["stack"]
    w.kill()


def dir_object_proto() -> set[str]:
    return {
        "__defineGetter__",
        "__defineSetter__",
        "__lookupGetter__",
        "__lookupSetter__",
        "__proto__",
        "hasOwnProperty",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toLocaleString",
        "toString",
        "valueOf",
    }


async def test_user_tampering_does_not_reach_the_bridge(nursery: trio.Nursery) -> None:
    """Poisoned prototypes see only what user code could see anyway."""
    w = await start_worker(
        nursery,
        r"""
      const seen = new Set();
      const record = (v) => { if (v && (typeof v === "object" || typeof v === "function")) seen.add(Object.prototype.toString.call(v)); };
      for (const name of ["bridge", "respond", "head", "chunk", "log", "call", "fetch", "timer", "random", "digest"]) {
        Object.defineProperty(Object.prototype, name, { get() { record(this); return undefined; }, set(v) { record(v); }, configurable: true });
      }
      const origApply = Function.prototype.apply;
      Function.prototype.apply = function (self, args) { record(self); return origApply.call(this, self, args); };
      addEventListener("fetch", (e) => e.respondWith((async () => {
        const kv = await noslate.kvStorages.open("t");
        await kv.set("k", new Uint8Array(2000));
        await new Response("x").text();
        console.log("logged");
        return Response.json([...seen]);
      })()));
    """,
    )
    r = await w.request()
    assert r.status == 200, r.failure
    assert r.json() == []  # no runtime-internal object reached the poisoned accessors
    assert any(m.message == "logged" for m in w.logs)
    w.kill()
