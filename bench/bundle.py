"""A realistic ~500 KB worker bundle: a router (hono), a template engine (handlebars)
and a markdown renderer (markdown-it), bundled by esbuild into one service-worker script.

The packages are installed into ``bench/.peers`` on first use (npm, with the machine's
own environment); esbuild is the project's (``node_modules/.bin/esbuild``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.common import BENCH, PEERS, ROOT, Skip

PACKAGES = ["markdown-it@14", "handlebars@4", "hono@4"]
ENTRY = BENCH / "apps" / "bundle_entry.js"
REACT_PACKAGES = ["react@18", "react-dom@18"]
REACT_ENTRY = BENCH / "apps" / "react_entry.js"
HONO_PACKAGES = ["hono@4"]
HONO_ENTRY = BENCH / "apps" / "hono_entry.js"


def build(outdir: Path, entry: Path = ENTRY, packages: list[str] = PACKAGES, name: str = "bundle.js") -> str:
    """Build (or reuse) the bundle of ``entry`` (npm ``packages``); returns its source."""
    out = outdir / name
    if out.exists():
        return out.read_text()
    modules = PEERS / "node_modules"
    if not all((modules / p.rsplit("@", 1)[0]).is_dir() for p in packages):
        npm = shutil.which("npm")
        if not npm:
            raise Skip("npm is not on PATH: cannot install the bundle's packages")
        proc = subprocess.run(
            [npm, "install", "--prefix", str(PEERS), "--no-audit", "--no-fund", *packages],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise Skip(f"npm install {' '.join(packages)} failed: {proc.stderr.strip()[-300:]}")
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise Skip(f"{esbuild} is missing (npm install at the repo root)")
    outdir.mkdir(parents=True, exist_ok=True)
    argv = [str(esbuild), str(entry), "--bundle", "--define:process.env.NODE_ENV=\"production\"",
            "--format=iife", "--platform=browser", "--target=es2022",
            f"--outfile={out}", "--log-level=warning"]  # fmt: skip
    proc = subprocess.run(
        argv, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_PATH": str(modules)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if proc.returncode != 0:
        raise Skip(f"esbuild failed: {proc.stderr.strip()[-300:]}")
    return out.read_text()
