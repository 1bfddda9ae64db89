# ruff: noqa: E501  (embedded JavaScript)
"""The Web APIs the runtime ships, each exercised through a real worker process."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import trio

from .harness import Worker, start_worker


def handler(body: str) -> str:
    """A service worker whose fetch handler is the async function body ``body``."""
    return f'addEventListener("fetch", (event) => event.respondWith((async () => {{ {body} }})()));'


async def run_json(nursery: trio.Nursery, body: str, **kw: Any) -> Any:
    w = await start_worker(nursery, handler(body), **kw)
    r = await w.request()
    assert r.status == 200, (r.failure, r.body[:300])
    w.kill()
    return r.json()


async def test_text_decoder_streaming_and_fatal(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const bytes = new TextEncoder().encode("h€llo 😀");
      const d = new TextDecoder();
      let s = "";
      for (const b of bytes) s += d.decode(new Uint8Array([b]), { stream: true });
      s += d.decode();
      let fatal = null;
      try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { fatal = e.name; }
      const lossy = new TextDecoder().decode(new Uint8Array([0x61, 0xff]));
      const bom = new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]));
      const into = new Uint8Array(4);
      const r = new TextEncoder().encodeInto("€a", into);
      const latin = new TextDecoder("windows-1252").decode(new Uint8Array([0x80]));
      return Response.json({ s, fatal, lossy, bom, r, latin, enc: new TextEncoder().encoding });
    """,
    )
    assert out == {
        "s": "h€llo 😀",
        "fatal": "TypeError",
        "lossy": "a\ufffd",
        "bom": "A",
        "r": {"read": 2, "written": 4},
        "latin": "€",
        "enc": "utf-8",
    }


async def test_base64_and_errors(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      let e1 = null, e2 = null;
      try { atob("*"); } catch (e) { e1 = [e.name, e instanceof DOMException, e.code]; }
      try { btoa("€"); } catch (e) { e2 = e.name; }
      return Response.json({ a: btoa("\\x00\\xff"), b: atob(" AP8= "), e1, e2 });
    """,
    )
    assert out == {
        "a": "AP8=",
        "b": "\u0000\u00ff",
        "e1": ["InvalidCharacterError", True, 5],
        "e2": "InvalidCharacterError",
    }


async def test_timers(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const order = [];
      await new Promise((resolve) => {
        setTimeout(() => order.push("t30"), 30);
        setTimeout((a, b) => order.push("t10:" + a + b), 10, "x", "y");
        const cancelled = setTimeout(() => order.push("never"), 5);
        clearTimeout(cancelled);
        let n = 0;
        const iv = setInterval(() => { order.push("iv" + n); if (++n === 3) clearInterval(iv); }, 5);
        setTimeout(resolve, 60);
        queueMicrotask(() => order.push("micro"));
      });
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 20));
      return Response.json({ order, waited: performance.now() - t0 >= 19 });
    """,
    )
    assert out["order"][0] == "micro"
    assert [x for x in out["order"] if x.startswith("iv")] == ["iv0", "iv1", "iv2"]
    assert out["order"].index("t10:xy") < out["order"].index("t30")
    assert "never" not in out["order"]
    assert out["waited"] is True


async def test_headers_request_response(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const res = {};
      try { event.request.headers.set("x", "1"); } catch (e) { res.immutable = e.name; }
      const req = new Request("https://example.com/a", { method: "post", body: "hi", headers: { "X-A": "1" } });
      const clone = req.clone();
      res.method = req.method;
      res.texts = [await req.text(), await clone.text()];
      res.used = [req.bodyUsed, clone.bodyUsed];
      try { await req.text(); } catch (e) { res.reuse = e.name; }
      const r = Response.redirect("https://example.com/next", 301);
      res.redirect = [r.status, r.headers.get("location")];
      res.error = [Response.error().type, Response.error().status];
      try { new Response("x", { status: 204 }); } catch (e) { res.nullBody = e.name; }
      try { new Response("x", { status: 99 }); } catch (e) { res.badStatus = e.name; }
      const j = Response.json({ a: 1 }, { status: 202, headers: { "x-b": "2" } });
      res.json = [j.status, j.headers.get("content-type"), await j.json()];
      const h = new Headers([["a", "1"], ["B", "2"]]);
      h.set("a", "3"); h.delete("b");
      res.headers = [...h];
      try { new Headers({ "bad name": "x" }); } catch (e) { res.badHeader = e.name; }
      const blob = await new Response(new Uint8Array([104, 105])).blob();
      res.blob = [blob.size, await blob.text()];
      res.ab = new Uint8Array(await new Response("ab").arrayBuffer()).length;
      res.bodyStream = typeof new Response("s").body.getReader;
      res.get = (() => { try { new Request("http://x/", { method: "GET", body: "x" }); } catch (e) { return e.name; } })();
      return Response.json(res);
    """,
    )
    assert out == {
        "immutable": "TypeError",
        "method": "POST",
        "texts": ["hi", "hi"],
        "used": [True, True],
        "reuse": "TypeError",
        "redirect": [301, "https://example.com/next"],
        "error": ["error", 0],
        "nullBody": "TypeError",
        "badStatus": "RangeError",
        "json": [202, "application/json", {"a": 1}],
        "headers": [["a", "3"]],
        "badHeader": "TypeError",
        "blob": [2, "hi"],
        "ab": 2,
        "bodyStream": "function",
        "get": "TypeError",
    }


async def test_blob_file_formdata(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const fd = new FormData();
      fd.append("name", "value");
      fd.append("file", new Blob(["file body"], { type: "text/plain" }), "a.txt");
      const resp = new Response(fd);
      const parsed = await resp.formData();
      const f = parsed.get("file");
      const enc = await new Response(new URLSearchParams("a=1&b=2")).formData();
      const file = new File(["x"], "x.bin", { type: "application/x" });
      const sliced = await new Blob(["hello world"]).slice(-5).text();
      return Response.json({
        name: parsed.get("name"), file: [f.name, f.type, await f.text()], enc: [...enc],
        fileObj: [file.name, file.size, file instanceof Blob], sliced,
        streamed: await new Response(new Blob(["streamed"]).stream()).text(),
      });
    """,
    )
    assert out == {
        "name": "value",
        "file": ["a.txt", "text/plain", "file body"],
        "enc": [["a", "1"], ["b", "2"]],
        "fileObj": ["x.bin", 1, True],
        "sliced": "world",
        "streamed": "streamed",
    }


async def test_streams_transform_and_pipe(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); } });
      const rs = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
      const got = [];
      await rs.pipeThrough(upper).pipeTo(new WritableStream({ write(x) { got.push(x); } }));
      const decoded = await new Response(
        new Response("héllo").body.pipeThrough(new TextDecoderStream())
          .pipeThrough(new TextEncoderStream())).text();
      const [a, b] = new Response("tee").body.tee();
      return Response.json({ got, decoded, tee: [await new Response(a).text(), await new Response(b).text()] });
    """,
    )
    assert out == {"got": ["A", "B"], "decoded": "héllo", "tee": ["tee", "tee"]}


async def test_events_abort_clone_crypto(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const et = new EventTarget();
      let calls = 0, detail = null;
      et.addEventListener("x", () => calls++, { once: true });
      et.addEventListener("y", (e) => { detail = e.detail; });
      et.dispatchEvent(new Event("x")); et.dispatchEvent(new Event("x"));
      et.dispatchEvent(new CustomEvent("y", { detail: { k: 1 } }));
      const t = AbortSignal.timeout(10);
      await new Promise((r) => t.addEventListener("abort", r));
      const ac = new AbortController();
      const any = AbortSignal.any([ac.signal, AbortSignal.timeout(10000)]);
      ac.abort("why");
      const clone = structuredClone({ s: new Set([1]), a: new Uint8Array([1, 2]), e: new RangeError("r"), self: null });
      let cloneErr = null;
      try { structuredClone({ f() {} }); } catch (e) { cloneErr = e.name; }
      const hex = async (alg) => [...new Uint8Array(await crypto.subtle.digest(alg, new TextEncoder().encode("abc")))]
        .map((b) => b.toString(16).padStart(2, "0")).join("");
      let quota = null;
      try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { quota = e.name; }
      let unsupported = null;
      try { await crypto.subtle.digest("MD5", new Uint8Array(1)); } catch (e) { unsupported = e.name; }
      return Response.json({
        calls, detail, timeout: t.reason.name, any: [any.aborted, any.reason],
        clone: [clone.s.has(1), clone.a[1], clone.e instanceof RangeError, clone.e.message], cloneErr,
        sha1: await hex("SHA-1"), sha384: (await hex("SHA-384")).slice(0, 16), sha512: (await hex("sha-512")).slice(0, 16),
        quota, unsupported, ua: navigator.userAgent, self: self === globalThis,
        random: Math.random() !== Math.random(), uuid: crypto.randomUUID().length,
      });
    """,
    )
    assert out == {
        "calls": 1,
        "detail": {"k": 1},
        "timeout": "TimeoutError",
        "any": [True, "why"],
        "clone": [True, 2, True, "r"],
        "cloneErr": "DataCloneError",
        "sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
        "sha384": "cb00753f45a35e8b",
        "sha512": "ddaf35a193617aba",
        "quota": "QuotaExceededError",
        "unsupported": "NotSupportedError",
        "ua": out["ua"],
        "self": True,
        "random": True,
        "uuid": 36,
    }
    assert out["ua"].startswith("Noslate-Workers/")


async def test_console_goes_to_log_frames(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """
      console.log("at load", { a: 1 });
      addEventListener("fetch", (event) => {
        console.info("info %s=%d", "n", 42);
        console.warn("careful");
        console.error(new TypeError("bad thing"));
        event.respondWith(new Response("ok"));
      });
    """,
    )
    r = await w.request()
    assert r.text() == "ok"
    logs = [(m.level, m.message, m.rid) for m in w.logs]
    assert ("info", "at load { a: 1 }", 0) in logs
    assert ("info", "info n=42", r.rid) in logs
    assert ("warn", "careful", r.rid) in logs
    err = next(m for m in w.logs if m.level == "error")
    assert err.message.startswith("TypeError: bad thing\n    at ")
    assert "(worker.js:6:" in err.message
    w.kill()


async def test_wait_until_settles_after_response(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """
      addEventListener("fetch", (event) => {
        event.waitUntil(new Promise((r) => setTimeout(() => { console.log("background done"); r(); }, 150)));
        event.respondWith(new Response("fast"));
      });
    """,
    )
    reply = await w.start_request()
    with trio.fail_after(5):
        await reply.done.wait()
    assert reply.text() == "fast"
    assert not reply.settled.is_set()
    assert not any(m.message == "background done" for m in w.logs)
    with trio.fail_after(5):
        await reply.settled.wait()
    assert any(m.message == "background done" for m in w.logs)
    w.kill()


async def test_failures_never_leak_host_details(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """
      addEventListener("fetch", (event) => {
        const p = new URL(event.request.url).pathname;
        if (p === "/sync") throw new Error("sync boom");
        if (p === "/async") return event.respondWith(Promise.reject(new Error("async boom")));
        if (p === "/notresponse") return event.respondWith("a string");
        if (p === "/late") return setTimeout(() => event.respondWith(new Response("late")), 1);
        if (p === "/twice") { event.respondWith(new Response("one")); event.respondWith(new Response("two")); }
        if (p === "/error") return event.respondWith(Response.error());
      });
    """,
    )
    sync = await w.request("GET", "/sync")
    assert sync.status == 500 and "sync boom" in sync.failure.detail
    async_ = await w.request("GET", "/async")
    assert async_.status == 500 and "async boom" in async_.failure.detail
    bad = await w.request("GET", "/notresponse")
    assert bad.status == 500 and "not a Response" in bad.failure.detail
    late = await w.request("GET", "/late")
    assert late.status == 502
    twice = await w.request("GET", "/twice")
    assert twice.status == 200 and twice.text() == "one"
    assert any("respondWith() has already been called" in m.message for m in w.logs)
    err = await w.request("GET", "/error")
    assert err.status == 502
    none = await w.request("GET", "/nothing")
    assert none.status == 502
    assert any("did not call respondWith" in m.message for m in w.logs)
    for r in (sync, async_, bad, late, err, none):
        text = r.failure.message + r.failure.detail
        for bad_word in ("Traceback", ".py", "site-packages", "/work/", "STPyV8"):
            assert bad_word not in text, text
    w.kill()


async def test_module_env_and_ctx(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """
      let hits = 0;
      export default {
        async fetch(request, env, ctx) {
          ctx.waitUntil(Promise.resolve(hits++));
          return Response.json({ env: env.GREETING, same: env === noslate.env, method: request.method });
        },
      };
    """,
        "index.mjs",
        env={"GREETING": "hej"},
    )
    r = await w.request("PUT", "/", body=b"x")
    assert r.json() == {"env": "hej", "same": True, "method": "PUT"}
    w.kill()


async def test_typescript_and_jsx_modules(nursery: trio.Nursery) -> None:
    ts = """
      interface Greeting { text: string }
      const g: Greeting = { text: "typed" };
      export default { fetch: (_req: Request): Response => new Response(g.text) };
    """
    w = await start_worker(nursery, ts, "worker.ts")
    assert (await w.request()).text() == "typed"
    w.kill()
    jsx = """
      const h = (tag, props, ...children) => `<${tag}>${children.join("")}</${tag}>`;
      /** @jsx h */
      export default { fetch: () => new Response(<p>hi {1 + 1}</p>) };
    """
    w = await start_worker(nursery, jsx, "page.jsx")
    assert (await w.request()).text() == "<p>hi 2</p>"
    w.kill()


async def test_shutdown_finishes_in_flight(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery, handler("await new Promise((r) => setTimeout(r, 200)); return new Response('done');")
    )
    first = await w.start_request()
    await trio.sleep(0.05)
    from kernel import protocol as p

    await w.write(p.Shutdown(5000))
    late = await w.start_request()
    with trio.fail_after(10):
        status = await w.proc.wait()
    assert status == 0
    assert first.text() == "done"
    assert late.failure is not None and late.failure.status == 503


def _decode(w: Worker) -> list[str]:
    return [m.message for m in w.logs]


async def test_load_errors_reported(nursery: trio.Nursery) -> None:
    import pytest

    with pytest.raises(RuntimeError, match=r"top-level code failed: Error: init failed"):
        await start_worker(nursery, 'throw new Error("init failed");')
    with pytest.raises(RuntimeError, match=r"no fetch handler"):
        await start_worker(nursery, "const x = 1;")
    with pytest.raises(RuntimeError, match=r"no fetch\(\) method"):
        await start_worker(nursery, "export default { nope: 1 };", "m.mjs")


def test_results_json_roundtrip() -> None:
    from plugins.runtime_v8.bridge import from_json_args, to_json_value

    assert from_json_args(to_json_value([b"\x00\xff", {"k": [b"a"]}, None])) == [
        b"\x00\xff",
        {"k": [b"a"]},
        None,
    ]
    assert json.loads(to_json_value("é")) == "é"


async def test_compression_urlpattern_wasm(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const text = "hello hello hello hello compression";
      const roundtrip = async (fmt) => {
        const packed = new Response(new Response(text).body.pipeThrough(new CompressionStream(fmt)));
        const bytes = new Uint8Array(await packed.arrayBuffer());
        const back = await new Response(new Response(bytes).body.pipeThrough(new DecompressionStream(fmt))).text();
        return [bytes[0], back === text];
      };
      let corrupt = null;
      try {
        await new Response(new Response(new Uint8Array([1, 2, 3])).body.pipeThrough(new DecompressionStream("gzip"))).text();
      } catch (e) { corrupt = e.name; }
      const pat = new URLPattern({ pathname: "/books/:id" });
      const m = pat.exec("https://example.com/books/42");
      const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
      const mod = await WebAssembly.compileStreaming(Promise.resolve(new Response(wasm)));
      return Response.json({
        gzip: await roundtrip("gzip"), deflate: await roundtrip("deflate"), raw: (await roundtrip("deflate-raw"))[1],
        corrupt, id: m.pathname.groups.id, test: pat.test("https://example.com/cars/1"),
        wasm: mod instanceof WebAssembly.Module,
      });
    """,
    )
    assert out == {
        "gzip": [31, True],
        "deflate": [120, True],
        "raw": True,
        "corrupt": "TypeError",
        "id": "42",
        "test": False,
        "wasm": True,
    }


async def test_log_level_and_request_attribution(nursery: trio.Nursery) -> None:
    w = await start_worker(
        nursery,
        """addEventListener("fetch", (event) => event.respondWith((async () => {
             console.debug("hidden"); console.info("hidden too");
             await new Promise((r) => setTimeout(r, 5));
             console.warn("after await");
             return new Response("ok");
           })()));""",
        log_level="warn",
    )
    r = await w.request()
    assert r.text() == "ok"
    assert [(m.level, m.message, m.rid) for m in w.logs] == [("warn", "after await", r.rid)]
    w.kill()


async def test_subtle_hmac_keys_sign_verify_import_export(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const enc = (s) => new TextEncoder().encode(s);
      const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
      const name = async (fn) => { try { await fn(); return "resolved"; } catch (e) { return e.name; } };
      const hmac = { name: "HMAC", hash: "SHA-256" };
      // RFC 4231 test case 2
      const jefe = await crypto.subtle.importKey("raw", enc("Jefe"), hmac, true, ["sign", "verify"]);
      const data = enc("what do ya want for nothing?");
      const mac = await crypto.subtle.sign("HMAC", jefe, data);
      const jwk = await crypto.subtle.exportKey("jwk", jefe);
      const back = await crypto.subtle.importKey("jwk", jwk, { name: "HMAC", hash: { name: "SHA-256" } }, false, ["verify"]);
      const gen = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-512" }, true, ["sign"]);
      const genRaw = await crypto.subtle.exportKey("raw", gen);
      const genMac = await crypto.subtle.sign({ name: "hmac" }, gen, enc("payload"));
      const tampered = new Uint8Array(mac.slice(0)); tampered[0] ^= 1;
      return Response.json({
        mac: hex(mac),
        verified: await crypto.subtle.verify("HMAC", back, mac, data),
        tampered: await crypto.subtle.verify("HMAC", back, tampered, data),
        short: await crypto.subtle.verify("HMAC", back, mac.slice(0, 31), data),
        jwk, key: [String(jefe), jefe.type, jefe.extractable, jefe.algorithm, jefe.usages, jefe instanceof CryptoKey],
        backUsages: back.usages,
        gen: [gen.algorithm.length, genRaw.byteLength, hex(genRaw), hex(genMac)],
        errors: {
          exportNonExtractable: await name(() => crypto.subtle.exportKey("raw", back)),
          signWithVerifyKey: await name(() => crypto.subtle.sign("HMAC", back, data)),
          badUsage: await name(() => crypto.subtle.importKey("raw", enc("k"), hmac, false, ["encrypt"])),
          noUsage: await name(() => crypto.subtle.importKey("raw", enc("k"), hmac, false, [])),
          emptyKey: await name(() => crypto.subtle.importKey("raw", new Uint8Array(0), hmac, false, ["sign"])),
          aes: await name(() => crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt"])),
          md5: await name(() => crypto.subtle.importKey("raw", enc("k"), { name: "HMAC", hash: "MD5" }, false, ["sign"])),
          jwkAlg: await name(() => crypto.subtle.importKey("jwk", { ...jwk, alg: "HS512" }, hmac, false, ["sign"])),
          construct: await name(async () => new CryptoKey()),
          encrypt: await name(() => crypto.subtle.encrypt({ name: "AES-GCM" }, jefe, data)),
        },
      });
    """,
    )
    assert out["mac"] == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert (out["verified"], out["tampered"], out["short"]) == (True, False, False)
    assert out["jwk"] == {
        "kty": "oct",
        "k": "SmVmZQ",
        "alg": "HS256",
        "key_ops": ["sign", "verify"],
        "ext": True,
    }
    assert out["key"] == [
        "[object CryptoKey]",
        "secret",
        True,
        {"name": "HMAC", "hash": {"name": "SHA-256"}, "length": 32},
        ["sign", "verify"],
        True,
    ]
    assert out["backUsages"] == ["verify"]
    bits, nbytes, raw, gen_mac = out["gen"]
    assert (bits, nbytes) == (1024, 128)
    assert gen_mac == hmac.new(bytes.fromhex(raw), b"payload", hashlib.sha512).hexdigest()
    assert out["errors"] == {
        "exportNonExtractable": "InvalidAccessError",
        "signWithVerifyKey": "InvalidAccessError",
        "badUsage": "SyntaxError",
        "noUsage": "SyntaxError",
        "emptyKey": "DataError",
        "aes": "NotSupportedError",
        "md5": "NotSupportedError",
        "jwkAlg": "DataError",
        "construct": "TypeError",
        "encrypt": "NotSupportedError",
    }


async def test_subtle_pbkdf2_and_hkdf_derive_bits_and_hmac_keys(nursery: trio.Nursery) -> None:
    out = await run_json(
        nursery,
        """
      const enc = (s) => new TextEncoder().encode(s);
      const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
      const unhex = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
      const name = async (fn) => { try { await fn(); return "resolved"; } catch (e) { return e.name; } };
      const pw = await crypto.subtle.importKey("raw", enc("password"), "PBKDF2", false, ["deriveBits", "deriveKey"]);
      const pbkdf2 = { name: "PBKDF2", hash: "SHA-1", salt: enc("salt"), iterations: 2 };
      const ikm = await crypto.subtle.importKey("raw", new Uint8Array(22).fill(11), { name: "HKDF" }, false, ["deriveBits"]);
      const hkdf = { name: "HKDF", hash: "SHA-256", salt: unhex("000102030405060708090a0b0c"), info: unhex("f0f1f2f3f4f5f6f7f8f9") };
      const derived = await crypto.subtle.deriveKey(
        { ...pbkdf2, hash: "SHA-256", iterations: 1000 }, pw, { name: "HMAC", hash: "SHA-256", length: 256 }, true, ["sign"]);
      return Response.json({
        pbkdf2: hex(await crypto.subtle.deriveBits(pbkdf2, pw, 160)),
        hkdf: hex(await crypto.subtle.deriveBits(hkdf, ikm, 42 * 8)),
        derivedKey: [derived.algorithm, hex(await crypto.subtle.exportKey("raw", derived))],
        pwKey: [pw.algorithm, pw.extractable, pw.usages],
        errors: {
          extractable: await name(() => crypto.subtle.importKey("raw", enc("p"), "PBKDF2", true, ["deriveBits"])),
          jwk: await name(() => crypto.subtle.importKey("jwk", { kty: "oct", k: "cA" }, "HKDF", false, ["deriveBits"])),
          oddLength: await name(() => crypto.subtle.deriveBits(pbkdf2, pw, 12)),
          zeroIterations: await name(() => crypto.subtle.deriveBits({ ...pbkdf2, iterations: 0 }, pw, 160)),
          hkdfTooLong: await name(() => crypto.subtle.deriveBits(hkdf, ikm, 255 * 32 * 8 + 8)),
          wrongUsage: await name(() => crypto.subtle.deriveKey(hkdf, ikm, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])),
          wrongAlgorithm: await name(() => crypto.subtle.deriveBits(pbkdf2, ikm, 160)),
          exportKdf: await name(() => crypto.subtle.exportKey("raw", pw)),
          aesTarget: await name(() => crypto.subtle.deriveKey(pbkdf2, pw, { name: "AES-GCM", length: 256 }, false, ["encrypt"])),
        },
      });
    """,
    )
    # RFC 6070 (PBKDF2-HMAC-SHA1, 2 iterations) and RFC 5869 test case 1 (HKDF-SHA256)
    assert out["pbkdf2"] == "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
    assert out["hkdf"] == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    algorithm, raw = out["derivedKey"]
    assert algorithm == {"name": "HMAC", "hash": {"name": "SHA-256"}, "length": 256}
    assert raw == hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1000, 32).hex()
    assert out["pwKey"] == [{"name": "PBKDF2"}, False, ["deriveBits", "deriveKey"]]
    assert out["errors"] == {
        "extractable": "SyntaxError",
        "jwk": "NotSupportedError",
        "oddLength": "OperationError",
        "zeroIterations": "OperationError",
        "hkdfTooLong": "OperationError",
        "wrongUsage": "InvalidAccessError",
        "wrongAlgorithm": "InvalidAccessError",
        "exportKdf": "InvalidAccessError",
        "aesTarget": "NotSupportedError",
    }
