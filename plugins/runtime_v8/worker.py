"""The runtime_v8 worker: ``load`` (in a seed) and ``serve`` (in an instance).

Contract (used by the warmfork seed and by cold starts)::

    loaded = load(artifact: bytes, init: dict)   # or load({"artifact": ..., "init": {...}})
    serve(loaded, fd: int, init: dict) -> NoReturn

``init`` keys (all optional): ``function``, ``version``, ``instance``, ``env`` (dict of
strings, the ES-module ``env`` and ``noslate.env``), ``v8_options`` (flags; honoured
only where the engine is not imported yet, i.e. cold starts), ``limits``,
``log_level``, ``warmup`` (``kernel.warmup.requests``: sent to the handler in a seed
before it forks) and ``warmup_budget_ms``. ``load`` raises :class:`LoadError` with the
user's JS error (message and ``file @ line : col``), never a Python traceback.

Cold start: ``python -m plugins.runtime_v8.worker --fd N --init SOURCE`` where SOURCE
is a JSON file path or ``fd:M`` (a pipe carrying the JSON); the JSON holds the init
keys plus ``artifact_b64`` (or ``artifact_path``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import time
import traceback
from typing import Any, NoReturn

from attrs import define

from kernel import artifact as artifacts
from plugins.runtime_v8.bridge import Host, js_str
from plugins.runtime_v8.engine import engine
from plugins.runtime_v8.runtime_js import runtime_source

RUNTIME_NAME = "aworker"
RUNTIME_SCRIPT = "noslate:runtime"
API_CALLS = ("request", "chunk", "end", "timer", "ack", "abort", "result", "fresp", "ferr", "reseed", "warm")
"""The runtime's entry points the event loop calls: looked up once in ``load`` (the
seed), so a forked instance neither crosses the bridge nor writes V8 heap pages to
wrap them again (each lookup builds a new function wrapper)."""


class LoadError(Exception):
    """The function's code failed to load (syntax error, top-level throw, no handler)."""


@define(eq=False)
class Loaded:
    """A context with the runtime and the user's code loaded."""

    ctx: Any
    api: Any
    host: Host
    init: dict[str, Any]
    filename: str
    load_ms: float
    calls: dict[str, Any]
    """``API_CALLS`` looked up on ``api`` (see there)."""
    spare_loop: Any = None
    """In a warmfork spare: the event loop :func:`warm` built ahead for ``serve``."""
    seed_report: dict[str, Any] | None = None
    """What the seed tells the daemon once loaded: ``{"warmup": [...]}`` (warmup.py)."""


def _unpack(artifact: Any, init: dict[str, Any] | None) -> tuple[bytes | str, dict[str, Any]]:
    if init is None and isinstance(artifact, dict):
        payload = artifact
        init = dict(payload.get("init") or {k: v for k, v in payload.items() if k != "artifact"})
        artifact = payload["artifact"]
    return artifact, dict(init or {})


def _js_error(exc: BaseException) -> str:
    """A JS exception's text as STPyV8 reports it (message and script location)."""
    text = str(exc).strip() or type(exc).__name__
    text = text.split("  -> ", 1)[0].strip()
    return text.removeprefix("JSError: ")


def load(artifact: Any, init: dict[str, Any] | None = None, *, forks: bool = True) -> Loaded:
    """Create the context, run the runtime bundle and the user's code, dispatch ``install``.

    ``forks``: the process is a seed whose forks may :func:`warm` (the runtime then
    records, before user code runs, what that warm-up relies on); False for a cold
    worker, which serves directly."""
    started = time.perf_counter()
    artifact, init = _unpack(artifact, init)
    v8 = engine(init.get("v8_options") or ())
    art = artifacts.parse(artifact)
    host = Host()
    ctx = v8.JSContext()
    ctx.enter()
    ctx.eval(js_str(runtime_source()), RUNTIME_SCRIPT)
    boot = ctx.eval(
        "(function(){const b=globalThis.__noslate_boot;delete globalThis.__noslate_boot;return b})()",
        RUNTIME_SCRIPT,
    )
    env = {str(k): str(v) for k, v in (init.get("env") or {}).items()}
    api = boot(host, json.dumps({"env": env, "seed": os.urandom(16).hex(), "warmable": forks}))
    try:
        result = ctx.eval(js_str(art.code), art.filename)
    except Exception as exc:  # a JS exception, converted by STPyV8
        raise LoadError(f"{art.filename}: top-level code failed: {_js_error(exc)}") from None
    try:
        if art.kind == "module":
            api.registerModule(result)
        error = api.install()
    except Exception as exc:
        raise LoadError(f"{art.filename}: {_js_error(exc)}") from None
    if error:
        raise LoadError(f"{art.filename}: install event handler threw: {error}")
    if not api.hasFetchHandler():
        raise LoadError(
            f"{art.filename}: no fetch handler: call addEventListener('fetch', ...) or "
            "export default { fetch(request, env, ctx) { ... } }"
        )
    calls = {name: getattr(api, name) for name in API_CALLS}
    loaded = Loaded(ctx, api, host, init, art.filename, (time.perf_counter() - started) * 1000, calls)
    if forks and init.get("warmup"):
        from plugins.runtime_v8 import warmup

        budget = float(init.get("warmup_budget_ms") or 10000) / 1000
        loaded.seed_report = {"warmup": warmup.run(loaded, init["warmup"], budget)}
    return loaded


def warm(loaded: Loaded) -> None:
    """In a pre-forked spare (warmfork), before it is taken: every page the first
    request of a fresh fork writes is a copy (3-5 us each on these hosts), so do the
    runtime's share of that work now, off the request path: build the event loop,
    seed the engine's PRNG from ``os.urandom`` (this process's own sequence, so the
    instance it becomes needs no further call into the engine: ``serve`` only resets
    the time origin, which lives in the host), run the runtime's request path once
    without user code (``warmRequestPath`` in the bundle) and encode the frames a
    request answers with. ``serve`` uses the loop built here."""
    from kernel import protocol as p
    from plugins.runtime_v8.bridge import headers_json, parse_headers
    from plugins.runtime_v8.loop import EventLoop

    loop = EventLoop(loaded, None, loaded.init)
    calls = loaded.calls
    calls["reseed"](os.urandom(16).hex())  # this process's own randomness, drawn now
    loop.reseeded = True
    calls["warm"]()
    headers_json([("accept", "*/*")])
    frames = p.FrameBuffer().feed(p.encode(p.Request(1, "GET", "http://warm.invalid/", [], False)))
    info = {"function": "", "version": "", "instance": "", "load_ms": 0.0}
    p.encode(p.Hello(os.getpid(), RUNTIME_NAME, info))
    loaded.host._payload(1, "warm")  # the body decoding of ``respond``
    p.encode(p.Response(1, 200, parse_headers('[["content-type","text/plain"]]'), True))
    p.encode(p.Chunk(1, b"warm"))
    p.encode(p.End(1))
    p.encode(p.Settled(1))
    loop.handlers.get(type(frames[0]))  # the dispatch table lookup of a request
    loaded.spare_loop = loop


def serve(loaded: Loaded, fd: int, init: dict[str, Any] | None = None) -> NoReturn:
    """Serve the kernel protocol on ``fd`` until EOF or Shutdown; leave via ``os._exit``."""
    code = 0
    try:
        from plugins.runtime_v8.loop import EventLoop

        merged = {**loaded.init, **(init or {})}
        loop = loaded.spare_loop
        if loop is None:
            loop = EventLoop(loaded, fd, merged)
        else:
            loop.attach(fd, merged)
        loop.run()
    except BaseException:
        code = 1
        try:
            sys.stderr.write(f"runtime_v8: worker failed:\n{traceback.format_exc()}")
            sys.stderr.flush()
        except Exception:
            pass
    os._exit(code)


def _read_init(source: str) -> dict[str, Any]:
    if source.startswith("fd:"):
        fd = int(source[3:])
        chunks = []
        while data := os.read(fd, 1 << 20):
            chunks.append(data)
        os.close(fd)
        return json.loads(b"".join(chunks))
    if source.lstrip().startswith("{"):
        return json.loads(source)
    with open(source, "rb") as f:
        return json.loads(f.read())


def main(argv: list[str] | None = None) -> NoReturn:
    """Cold start: load + serve in one process."""
    parser = argparse.ArgumentParser(prog="python -m plugins.runtime_v8.worker")
    parser.add_argument("--fd", type=int, required=True, help="the kernel channel's descriptor")
    parser.add_argument("--init", required=True, help="init JSON: a file, 'fd:N' or literal JSON")
    args = parser.parse_args(argv)
    try:
        init = _read_init(args.init)
        if "artifact_b64" in init:
            artifact: bytes = base64.b64decode(init.pop("artifact_b64"))
        else:
            with open(init.pop("artifact_path"), "rb") as f:
                artifact = f.read()
        loaded = load(artifact, init, forks=False)
    except LoadError as exc:
        _fail_start(args.fd, str(exc))
    except Exception as exc:
        _fail_start(args.fd, f"worker start failed: {type(exc).__name__}: {exc}")
    serve(loaded, args.fd, init)


def _fail_start(fd: int, message: str) -> NoReturn:
    """Tell the kernel why we could not start (a Log frame), then exit 1."""
    from kernel import protocol as p

    with contextlib.suppress(OSError):
        os.write(fd, p.encode(p.Log("error", message)))
    sys.stderr.write(message + "\n")
    os._exit(1)


if __name__ == "__main__":
    main()
