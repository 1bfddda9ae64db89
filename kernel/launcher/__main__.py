"""``python -m kernel.launcher``: the launcher process (started by the daemon, not by people).

It loads the same plugins and config as the daemon (so it holds the same isolation
layers), imports the runtimes' preload modules (so it is the zygote every seed is
forked from), becomes a child subreaper with a parent-death signal, says hello on the
control socket and serves the daemon's commands until the daemon goes away.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import sys
import time
from typing import Any

import prctl

from kernel.launcher.child import describe, resolve
from kernel.launcher.server import Server
from kernel.launcher.wire import Conn


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kernel.launcher", description=__doc__)
    p.add_argument("--fd", type=int, required=True, help="inherited control socket")
    p.add_argument("--parent", type=int, required=True, help="pid of the daemon")
    p.add_argument("--config", help="the daemon's TOML config (default: embedded)")
    p.add_argument(
        "--plugins",
        choices=("config", "all", "none"),
        default="config",
        help="load the config's plugins that have launcher hooks (default), all of them, or none",
    )
    p.add_argument(
        "--layer", action="append", default=[], help="extra isolation layer factory 'module:callable' (tests)"
    )
    p.add_argument("--preload", action="append", default=[], help="module to import first")
    return p.parse_args(argv)


def load_layers(args: argparse.Namespace) -> tuple[list[Any], list[str], list[str]]:
    """The isolation layers, preload modules and loaded plugin names of the daemon's
    plugin set (``--plugins config``: only the plugins with launcher hooks, see
    :mod:`kernel.launcher.plugins`)."""
    layers: list[Any] = []
    preload: list[str] = []
    loaded: list[str] = []
    if args.plugins == "all":
        from kernel.config import load_config_and_plugins

        config, pm = load_config_and_plugins(args.config)
        pm.hooks.configure(config)
        layers.extend(pm.hooks.isolation_layers())
        preload.extend(pm.hooks.launcher_preload())
        loaded = sorted(n for n, info in pm.infos.items() if info.enabled)
    elif args.plugins == "config":
        from kernel.config import build_config, default_text, parse_toml
        from kernel.launcher.plugins import lean_config_data

        if args.config is None:
            text = default_text()
        else:
            with open(args.config, encoding="utf-8") as f:
                text = f.read()
        lean = lean_config_data(parse_toml(text))
        if lean is not None:
            config, pm = build_config(lean, args.config or "<embedded default>")
            pm.hooks.configure(config)
            layers.extend(pm.hooks.isolation_layers())
            preload.extend(pm.hooks.launcher_preload())
            loaded = sorted(n for n, info in pm.infos.items() if info.enabled)
    layers.extend(resolve(spec)() for spec in args.layer)
    preload.extend(args.preload)
    return layers, list(dict.fromkeys(preload)), loaded


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prctl.set_child_subreaper(True)
    prctl.set_pdeathsig(signal.SIGTERM)
    if os.getppid() != args.parent:  # the daemon died before we armed the signal
        sys.exit(1)
    conn = Conn(socket.socket(fileno=args.fd))
    started = time.perf_counter()
    try:
        layers, preload, plugins = load_layers(args)
        for name in preload:
            importlib.import_module(name)
    except BaseException as exc:
        conn.send(
            {
                "op": "hello",
                "ok": False,
                "pid": os.getpid(),
                "error": f"launcher start-up failed: {describe(exc)}",
            }
        )
        sys.exit(2)
    conn.send(
        {
            "op": "hello",
            "ok": True,
            "pid": os.getpid(),
            "layers": [layer.name for layer in layers],
            "preload": preload,
            "plugins": plugins,
            "startup_ms": (time.perf_counter() - started) * 1000,
        }
    )
    Server(conn, layers).run()


if __name__ == "__main__":
    main()
