"""The runtime JavaScript bundle (built by ``scripts/build-js.sh``)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

JS_DIR = Path(__file__).parent / "js"
BUNDLE = JS_DIR / "dist" / "runtime.js"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-js.sh"


class BundleMissingError(RuntimeError):
    """The runtime bundle is not built."""


def build() -> None:
    """Run ``scripts/build-js.sh`` (needs node and the repo's node_modules)."""
    subprocess.run(["sh", str(BUILD_SCRIPT)], check=True, cwd=REPO_ROOT, capture_output=True)


def stale() -> bool:
    """True when a source file is newer than the bundle (or the bundle is missing)."""
    if not BUNDLE.exists():
        return True
    built = BUNDLE.stat().st_mtime
    sources = [
        *(JS_DIR / "src").glob("*.js"),
        *(JS_DIR / "src").glob("*.cjs"),
        REPO_ROOT / "package-lock.json",
    ]
    return any(p.exists() and p.stat().st_mtime > built for p in sources)


@functools.cache
def runtime_source() -> str:
    """The bundle's text, read once per process (the launcher reads it before forking)."""
    try:
        return BUNDLE.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BundleMissingError(
            f"runtime bundle {BUNDLE} is missing: run `sh scripts/build-js.sh` (or `make js`)"
        ) from exc
