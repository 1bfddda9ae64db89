"""The ``[plugins.runtime_v8]`` config section."""

from __future__ import annotations

from attrs import field, frozen, validators


@frozen(kw_only=True)
class RuntimeV8Config:
    """Settings of the embedded-V8 (STPyV8) runtime, ``aworker``."""

    v8_flags: list[str] = field(factory=list)
    """Extra V8 flags for every worker process (``--single-threaded`` is always set).

    They are applied where the engine is imported: in the launcher (so every seed and
    instance) and in cold workers. A profile whose ``worker.v8Options`` asks for more is
    not seeded: its instances start cold (V8 cannot change flags in a forked process)."""
    max_heap_mb: int | None = field(default=None, validator=validators.optional(validators.gt(0)))
    """V8 old-space limit in MiB (``--max-old-space-size``); None = V8's default.
    Memory is enforced by cgroups; this makes V8 fail a runaway script earlier."""
    node: str = "node"
    """The Node.js binary used at deploy time to run esbuild."""
    python: str = ""
    """Interpreter for cold workers; empty = the daemon's own (``sys.executable``)."""
    max_code_bytes: int = field(default=32 * 1024 * 1024, validator=validators.gt(0))
    """Largest source a deploy may upload."""

    def all_flags(self) -> list[str]:
        flags = list(self.v8_flags)
        if self.max_heap_mb is not None:
            flags.append(f"--max-old-space-size={self.max_heap_mb}")
        return flags
