"""Deploy-time code preparation: syntax check (scripts) or esbuild bundling (modules).

The artifact format is runtime_v8's (``//# noslate-artifact kind=... filename=...``
then the code), so a function moves between runtimes by changing ``runtime``.
Scripts are kept byte for byte; ES modules, TypeScript and JSX become an expression
evaluating to the module's exports.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import trio
from attrs import frozen

from kernel.errors import DeployError
from plugins.runtime_node.node import CLEAN_ENV

PREPARE_JS = Path(__file__).parent / "js" / "prepare.mjs"
MODULE_EXTS = {".mjs": "js", ".ts": "ts", ".mts": "ts", ".tsx": "tsx", ".jsx": "jsx"}
MODULE_SYNTAX = re.compile(r"^\s*(export\s|export\{|import\s*[\w{*\"'])", re.MULTILINE)
HEADER_RE = re.compile(r"^//# noslate-artifact kind=(script|module) filename=([^\s]+)\n")


@frozen
class Artifact:
    kind: str
    filename: str
    code: str

    def encode(self) -> bytes:
        return f"//# noslate-artifact kind={self.kind} filename={self.filename}\n{self.code}".encode()


def parse(data: bytes) -> Artifact:
    """Split an artifact into kind, filename and code (no header: a script ``worker.js``)."""
    text = data.decode("utf-8")
    m = HEADER_RE.match(text)
    if m is None:
        return Artifact("script", "worker.js", text)
    return Artifact(m.group(1), m.group(2), text[m.end() :])


def detect(code: str, filename: str) -> tuple[str, str]:
    """Return (kind, esbuild loader) for ``filename``'s code."""
    ext = os.path.splitext(filename)[1].lower()
    if ext in MODULE_EXTS:
        return "module", MODULE_EXTS[ext]
    if ext == ".cjs":
        return "script", "js"
    return ("module" if MODULE_SYNTAX.search(code) else "script"), "js"


def safe_filename(filename: str) -> str:
    name = os.path.basename(filename or "worker.js") or "worker.js"
    return re.sub(r"[^\w.\-]", "_", name)


async def esbuild(code: str, filename: str, mode: str, loader: str, node: str) -> str:
    """Run ``js/prepare.mjs`` (esbuild from the repo's node_modules); raise DeployError."""
    request = json.dumps({"code": code, "filename": filename, "mode": mode, "loader": loader}).encode()
    try:
        with trio.fail_after(60):
            proc = await trio.run_process(
                [node, str(PREPARE_JS)],
                stdin=request,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=CLEAN_ENV,
            )
    except trio.TooSlowError as exc:
        raise DeployError(f"{filename}: preparing the code took longer than 60 s") from exc
    try:
        result = json.loads(proc.stdout)
    except ValueError as exc:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise DeployError(
            f"cannot prepare code: esbuild failed ({tail[0]}); run `npm ci` at the repo root"
        ) from exc
    if not result.get("ok"):
        first = result["errors"][0]
        more = len(result["errors"]) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise DeployError(first["text"] + suffix, f"{first['file']}:{first['line']}:{first['column']}")
    return str(result["code"])


def wrap_module(cjs: str) -> str:
    """An expression evaluating to the CommonJS bundle's ``module.exports``."""
    head = "(function(){var module={exports:{}},exports=module.exports;\n"
    return f"{head}{cjs}\nreturn module.exports;}})()"


async def prepare(code: bytes, filename: str, node: str) -> bytes:
    """Check or transform ``code``; return the artifact."""
    name = safe_filename(filename)
    try:
        text = code.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeployError(f"source is not valid UTF-8 (byte {exc.start})", f"{name}:0:0") from exc
    kind, loader = detect(text, name)
    if kind == "script":
        await esbuild(text, name, "check", loader, node)
        return Artifact("script", name, text).encode()
    out = await esbuild(text, name, "module", loader, node)
    return Artifact("module", name, wrap_module(out)).encode()
