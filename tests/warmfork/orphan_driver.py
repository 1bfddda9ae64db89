"""Stands in for the daemon in the no-orphans test: starts a launcher, a seed, instances
and a cold worker, prints their pids as one JSON line, then sleeps until killed -9."""

from __future__ import annotations

import json
import socket
import sys

import trio

from kernel.launcher.client import Launcher


async def main(entries: str) -> None:
    launcher = await Launcher.start(plugins=False, env={"PYTHONPATH": sys.path[0]})
    seed = await launcher.fork_seed(entry=f"{entries}:load", payload={})
    keep = []
    pids = {"launcher": launcher.pid, "seed": seed.pid, "instances": []}
    for _ in range(3):
        ours, theirs = socket.socketpair()
        inst = await seed.fork_instance(entry=f"{entries}:serve", payload={}, channel_fd=theirs.fileno())
        theirs.close()
        keep.append(ours)
        pids["instances"].append(inst.pid)
    cold = await launcher.spawn(["sleep", "60"], {"PATH": "/usr/bin:/bin"})
    pids["cold"] = cold.pid
    print(json.dumps(pids), flush=True)
    await trio.sleep(60)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
