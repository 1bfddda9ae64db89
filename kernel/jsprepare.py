"""Deploy-time preparation shared by the JS runtimes: check scripts, transform modules.

Service-worker scripts are checked with esbuild and kept byte for byte (so stack
line numbers match the source). ES modules, TypeScript and JSX are bundled by esbuild
(a sandboxed job, :mod:`kernel.buildjob`; imports resolve only within the upload)
into CommonJS and wrapped into an expression that evaluates to the module's exports.
Errors become :class:`kernel.errors.DeployError` with ``file:line:column``. Every
runtime (aworker, nodejs) gets the same artifact (:mod:`kernel.artifact`) for the same
code, so a function moves between runtimes by changing ``runtime``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from kernel.artifact import Artifact
from kernel.buildjob import BuildJobs, BuildLimits
from kernel.errors import DeployError

PREPARE_JS = Path(__file__).parent / "js" / "prepare.mjs"
MODULE_EXTS = {".mjs": "js", ".ts": "ts", ".mts": "ts", ".tsx": "tsx", ".jsx": "jsx"}
MODULE_SYNTAX = re.compile(r"^\s*(export\s|export\{|import\s*[\w{*\"'])", re.MULTILINE)
MAX_CODE = 32 * 1024 * 1024


def detect(code: str, filename: str) -> tuple[str, str]:
    """Return (kind, esbuild loader) for ``filename``'s code."""
    ext = os.path.splitext(filename)[1].lower()
    if ext in MODULE_EXTS:
        return "module", MODULE_EXTS[ext]
    if ext == ".cjs":
        return "script", "js"
    return ("module" if MODULE_SYNTAX.search(code) else "script"), "js"


def wrap_module(cjs: str) -> str:
    """An expression evaluating to the CommonJS bundle's ``module.exports``."""
    return (
        "(function(){var module={exports:{}},exports=module.exports;\n"
        f"{cjs}\nreturn module.exports;}})()"
    )


def _safe_filename(filename: str) -> str:
    name = os.path.basename(filename or "worker.js") or "worker.js"
    return re.sub(r"[^\w.\-]", "_", name)


NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"


def job_paths(node: str) -> list[str]:
    """What the job must see inside a private root: node's installation, esbuild."""
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(node)))
    return [prefix, str(NODE_MODULES), str(PREPARE_JS.parent)]


async def esbuild(
    code: str,
    filename: str,
    mode: str,
    loader: str,
    *,
    node: str | None = None,
    env: dict[str, str] | None = None,
    jobs: BuildJobs | None = None,
    profile: Any = None,
    limits: BuildLimits | None = None,
) -> str:
    """Run ``js/prepare.mjs`` with ``node`` as a sandboxed job; return code or raise DeployError.

    The job resolves no import outside the upload (``prepare.mjs`` refuses every
    specifier and reads no file), runs as the function's sandboxed user in its own
    cgroup, and is bounded in memory, time and output (``[deploy]``).
    """
    node = node or shutil.which("node") or "node"
    request = json.dumps({"code": code, "filename": filename, "mode": mode, "loader": loader}).encode()
    env = env or {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_OPTIONS": ""}
    runner = jobs or BuildJobs(None)
    limits = limits or runner.limits()
    try:
        proc = await runner.run(
            [node, str(PREPARE_JS)],
            env=env,
            stdin=request,
            profile=profile,
            purpose="esbuild",
            limits=limits,
            ro_paths=job_paths(node),
            what=f"{filename}: preparing the code",
        )
    except FileNotFoundError as exc:
        raise DeployError("cannot prepare code: `node` is not installed (needed for esbuild)") from exc
    try:
        result = json.loads(proc.stdout)
    except ValueError as exc:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [
            f"exit status {proc.returncode}, no output"
        ]
        raise DeployError(
            f"cannot prepare code: esbuild failed ({tail[0]}); run `npm ci` at the repo root"
        ) from exc
    if not result.get("ok"):
        errors = result["errors"]
        first = errors[0]
        text = first["text"]
        if len(errors) > 1:
            rest = "; ".join(f"{e['file']}:{e['line']}:{e['column']}: {e['text']}" for e in errors[1:])
            text += f" (and {len(errors) - 1} more: {rest})"
        raise DeployError(text, f"{first['file']}:{first['line']}:{first['column']}")
    return str(result["code"])


async def prepare(
    code: bytes,
    filename: str,
    *,
    node: str | None = None,
    env: dict[str, str] | None = None,
    jobs: BuildJobs | None = None,
    profile: Any = None,
    limits: BuildLimits | None = None,
) -> bytes:
    """Check or transform ``code``; return the artifact the runtimes load."""
    name = _safe_filename(filename)
    if len(code) > MAX_CODE:
        raise DeployError(f"{name}: code is {len(code)} bytes, more than the {MAX_CODE}-byte limit")
    try:
        text = code.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeployError(f"source is not valid UTF-8 (byte {exc.start})", f"{name}:0:0") from exc
    kind, loader = detect(text, name)
    job: dict[str, Any] = {"node": node, "env": env, "jobs": jobs, "profile": profile, "limits": limits}
    if kind == "script":
        await esbuild(text, name, "check", loader, **job)
        return Artifact("script", name, text).encode()
    out = await esbuild(text, name, "module", loader, **job)
    return Artifact("module", name, wrap_module(out)).encode()
