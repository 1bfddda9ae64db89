"""The engine flags a tenant's profile may ask for (``worker.v8Options``, ``worker.execArgv``).

Flags reach a real engine started for the tenant (and, on runtime_node, the snapshot
build), so only an allow-list passes: tuning and language flags without side effects
outside the instance. Everything else is refused at deploy with 422 naming the flag,
in particular debuggers and profilers (``--inspect*``, ``--cpu-prof*``,
``--heap-prof*``, ``--prof``), natives and host hooks (``--allow-natives-syntax``,
``--expose-*``) and any flag that takes a path, a port or a module to preload.
Names are compared with ``_`` read as ``-`` (V8 accepts both spellings).
"""

from __future__ import annotations

import re

NUMBER = r"[0-9]{1,9}"
V8_VALUED = {
    "--max-old-space-size": NUMBER,
    "--max-semi-space-size": NUMBER,
    "--stack-size": NUMBER,
    "--stack-trace-limit": NUMBER,
}
V8_SWITCHES = frozenset(
    {
        "--jitless",
        "--lazy",
        "--no-lazy",
        "--max-lazy",
        "--no-opt",
        "--opt",
        "--single-threaded",
        "--single-threaded-gc",
        "--sparkplug",
        "--no-sparkplug",
        "--maglev",
        "--no-maglev",
        "--turbofan",
        "--no-turbofan",
        "--optimize-for-size",
        "--use-strict",
        "--harmony",
        "--no-expose-wasm",
        "--disallow-code-generation-from-strings",
    }
)
V8_PATTERNS = (re.compile(r"--(no-)?harmony-[a-z0-9-]+"),)
NODE_VALUED = {
    "--unhandled-rejections": r"strict|warn|none|throw|warn-with-error-code",
    "--disable-proto": r"delete|throw",
    "--max-http-header-size": NUMBER,
}
NODE_SWITCHES = frozenset(
    {
        "--enable-source-maps",
        "--no-deprecation",
        "--throw-deprecation",
        "--no-warnings",
        "--frozen-intrinsics",
        "--no-experimental-global-navigator",
    }
)


def _why_refused(flag: str) -> str:
    name = flag.split("=", 1)[0]
    if re.match(r"--(inspect|debug)", name):
        return "it opens a debugger"
    if re.match(r"--(cpu-prof|heap-prof|prof|perf|trace|diagnostic|report)", name):
        return "it writes profiles or reports to the host"
    if name in ("--allow-natives-syntax",) or name.startswith("--expose"):
        return "it exposes engine internals to the code"
    if name in ("--require", "-r", "--import", "--loader", "--experimental-loader", "--env-file"):
        return "it loads host files"
    return "it is not on the allow-list of engine flags (docs/profiles.md)"


def check_flag(flag: str, *, node: bool) -> str | None:
    """None when ``flag`` is allowed (``node``: in Node's ``execArgv``), else why not."""
    if not isinstance(flag, str) or not flag.startswith("--") or any(c.isspace() for c in flag):
        return "flags are single `--name` or `--name=value` strings"
    name, sep, value = flag.partition("=")
    norm = "--" + name[2:].replace("_", "-")
    valued = {**V8_VALUED, **(NODE_VALUED if node else {})}
    if norm in valued:
        if sep and re.fullmatch(valued[norm], value):
            return None
        return f"it needs a value matching {valued[norm]!r}, as `{norm}=VALUE`"
    if not sep and (norm in V8_SWITCHES or (node and norm in NODE_SWITCHES)):
        return None
    if not sep and any(p.fullmatch(norm) for p in V8_PATTERNS):
        return None
    return _why_refused(norm + (sep + value))


def refused(flags: list[str], *, node: bool) -> list[tuple[str, str]]:
    """``(flag, reason)`` for each flag of ``flags`` that is not allowed."""
    out = []
    for flag in flags:
        reason = check_flag(flag, node=node)
        if reason is not None:
            out.append((str(flag), reason))
    return out
