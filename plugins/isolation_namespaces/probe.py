"""Can this host give workers namespaces and a root? (tried in a throw-away child)"""

from __future__ import annotations

import os
from typing import Any

from plugins.isolation_namespaces import linux as L


def try_unshare(types: list[str]) -> str | None:
    """Fork a child that unshares ``types``; None on success, else the error text."""
    flags = 0
    for t in types:
        flags |= L.NS_FLAGS[t]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            L.unshare(flags)
            os._exit(0)
        except BaseException as exc:
            os.write(w, str(exc).encode()[:500])
            os._exit(1)
    os.close(w)
    try:
        msg = os.read(r, 1000).decode(errors="replace")
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    return None if os.waitstatus_to_exitcode(status) == 0 else (msg or f"status {status}")


def probe(cfg: Any) -> dict[str, Any]:
    report: dict[str, Any] = {"root": os.geteuid() == 0, "namespaces": list(cfg.namespaces)}
    problems: list[str] = []
    if cfg.namespaces:
        err = try_unshare(list(cfg.namespaces))
        report["unshare"] = err is None
        if err:
            problems.append(f"cannot create namespaces {', '.join(cfg.namespaces)}: {err} (needs root)")
    report["rootfs"] = bool(cfg.rootfs and "mount" in cfg.namespaces)
    report["root_dir"] = cfg.root_dir
    report["problems"] = problems
    return report
