"""Which names of the WinterTC Minimum Common API (ECMA-429) the runtime provides.

``python -m plugins.runtime_v8.coverage [--json]`` loads the runtime in a fresh V8
context (no user code) and prints a markdown table (the one in ``docs/runtime.md``).
"""

from __future__ import annotations

import argparse
import json
import sys

from plugins.runtime_v8.worker import load

INTERFACES = (
    "AbortController",
    "AbortSignal",
    "Blob",
    "ByteLengthQueuingStrategy",
    "CompressionStream",
    "CountQueuingStrategy",
    "Crypto",
    "CryptoKey",
    "CustomEvent",
    "DecompressionStream",
    "DOMException",
    "Event",
    "EventTarget",
    "File",
    "FormData",
    "Headers",
    "ReadableByteStreamController",
    "ReadableStream",
    "ReadableStreamBYOBReader",
    "ReadableStreamBYOBRequest",
    "ReadableStreamDefaultController",
    "ReadableStreamDefaultReader",
    "Request",
    "Response",
    "SubtleCrypto",
    "TextDecoder",
    "TextDecoderStream",
    "TextEncoder",
    "TextEncoderStream",
    "TransformStream",
    "TransformStreamDefaultController",
    "URL",
    "URLPattern",
    "URLSearchParams",
    "WebAssembly.Global",
    "WebAssembly.Instance",
    "WebAssembly.Memory",
    "WebAssembly.Module",
    "WebAssembly.Table",
    "WebAssembly.Tag",
    "WebAssembly.Exception",
    "WebAssembly.CompileError",
    "WebAssembly.LinkError",
    "WebAssembly.RuntimeError",
    "WritableStream",
    "WritableStreamDefaultController",
    "WritableStreamDefaultWriter",
)
GLOBALS = (
    "globalThis",
    "self",
    "atob",
    "btoa",
    "console",
    "crypto",
    "fetch",
    "navigator.userAgent",
    "performance.now",
    "performance.timeOrigin",
    "queueMicrotask",
    "reportError",
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
    "structuredClone",
    "AbortSignal.abort",
    "AbortSignal.timeout",
    "AbortSignal.any",
    "Response.json",
    "Response.redirect",
    "Response.error",
    "URL.canParse",
    "crypto.getRandomValues",
    "crypto.randomUUID",
    "crypto.subtle.digest",
    "Headers.prototype.getSetCookie",
    "WebAssembly.compile",
    "WebAssembly.instantiate",
    "WebAssembly.validate",
    "WebAssembly.compileStreaming",
    "WebAssembly.instantiateStreaming",
)
NOTES = {
    "CryptoKey": "constructor exists; no SubtleCrypto key operations (digest only)",
    "SubtleCrypto": "digest (SHA-1/256/384/512) only; other methods reject with NotSupportedError",
    "TextDecoder": "all WHATWG single-byte encodings and UTF-8/UTF-16; no legacy CJK multi-byte",
}
PROBE = "addEventListener('fetch', () => {});"


def probe() -> dict[str, bool]:
    """Name -> whether it exists in a fresh context of the runtime."""
    loaded = load(PROBE.encode(), {"env": {}})
    check = loaded.ctx.eval(
        "(function(path){let o=globalThis;for(const k of path.split('.')){"
        "if(o===null||o===undefined)return false;o=o[k];}return o!==undefined})"
    )
    return {name: bool(check(name)) for name in (*INTERFACES, *GLOBALS)}


def table(result: dict[str, bool]) -> str:
    lines = ["| name | kind | status | notes |", "|---|---|---|---|"]
    for kind, names in (("interface", INTERFACES), ("global / member", GLOBALS)):
        for name in names:
            status = "yes" if result[name] else "**missing**"
            lines.append(f"| `{name}` | {kind} | {status} | {NOTES.get(name, '')} |")
    have = sum(result.values())
    lines.append(f"\n{have} of {len(result)} names present.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.runtime_v8.coverage")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    args = parser.parse_args(argv)
    result = probe()
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
