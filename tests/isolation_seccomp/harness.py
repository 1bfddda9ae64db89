"""A tiny stand-in for the launcher: build a sandbox through the plugins' hooks, fork a
child, apply the layers with the launcher's own ``apply_layers``, run a probe, print JSON.

Run as ``python -m tests.isolation_seccomp.harness SPEC_JSON`` (a fresh single-threaded
process, like the launcher). SPEC: {"seccomp": {...config...}, "namespaces": {...} or
null, "probe": "name", "args": {...}, "children": n}. Prints one JSON line per child.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from kernel.launcher import child as launcher_child
from kernel.profile import FunctionProfile
from kernel.sandbox import Sandbox
from tests.isolation_seccomp import probes


class _Config:
    def __init__(self, sections: dict[str, Any], state_dir: str) -> None:
        self.sections = sections
        self.server = type("S", (), {"state_dir": state_dir})()

    def plugin_section(self, name: str) -> Any:
        return self.sections.get(name)


def setup(spec: dict[str, Any]) -> tuple[list[Any], Sandbox]:
    from plugins.isolation_namespaces import plugin as ns_plugin
    from plugins.isolation_namespaces.config import NamespacesConfig
    from plugins.isolation_seccomp import plugin as sc_plugin
    from plugins.isolation_seccomp.config import SeccompConfig

    sections: dict[str, Any] = {}
    mods = []
    if spec.get("seccomp") is not None:
        sections["isolation_seccomp"] = SeccompConfig(**spec["seccomp"])
        mods.append(sc_plugin)
    if spec.get("namespaces") is not None:
        sections["isolation_namespaces"] = NamespacesConfig(**spec["namespaces"])
        mods.append(ns_plugin)
    cfg = _Config(sections, spec.get("state_dir", "/var/lib/noslate"))
    sandbox = Sandbox()
    sandbox.process.title = spec.get("title", "noslate:probe@v1#1")
    layers: list[Any] = []
    for mod in mods:
        mod.noslate_configure(config=cfg)
        mod.noslate_startup(kernel=type("K", (), {"state_dir": cfg.server.state_dir})())
        mod.noslate_sandbox_contribute(sandbox=sandbox, function=FunctionProfile(name="probe"), role="seed")
        layers += mod.noslate_isolation_layers()
    return layers, Sandbox.from_oci(sandbox.to_oci())


def run_child(layers: list[Any], sandbox: Sandbox, probe: str, args: dict[str, Any], out: int) -> None:
    t0 = time.perf_counter()
    try:
        launcher_child.apply_layers(layers, sandbox, instance=False)
        setup_ms = (time.perf_counter() - t0) * 1000
        result = getattr(probes, probe)(**args)
        result["setup_ms"] = setup_ms
        result["pid_seen"] = os.getpid()
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    os.write(out, (json.dumps(result) + "\n").encode())
    os._exit(0)


def main() -> None:
    spec = json.loads(sys.argv[1])
    import prctl  # noqa: F401  (the launcher imports it at start too)

    if spec.get("preload_v8"):
        import _STPyV8

        _STPyV8.JSEngine.setFlags("--single-threaded")
        import STPyV8  # noqa: F401
    layers, sandbox = setup(spec)
    for _ in range(spec.get("children", 1)):
        r, w = os.pipe()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            run_child(layers, sandbox, spec["probe"], spec.get("args", {}), w)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        total_ms = (time.perf_counter() - t0) * 1000
        text = b"".join(chunks).decode() or "{}"
        result = json.loads(text)
        result.update(status=os.waitstatus_to_exitcode(status), host_pid=pid, total_ms=total_ms)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
