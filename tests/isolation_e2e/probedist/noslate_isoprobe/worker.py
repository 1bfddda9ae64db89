"""The probe worker: ``load`` (seed or cold: runs the deployed code) and ``serve``
(instance or cold: speaks kernel.protocol on ``fd``; leaves only via ``os._exit``).

Reuses the connection and frame loop of the kernel tests' Python worker (noslate_testkit).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, NoReturn

from noslate_testkit.worker import Conn, serve_frames

from kernel import protocol as p


def load(payload: dict[str, Any]) -> dict[str, Any]:
    code = payload["artifact"]
    ns: dict[str, Any] = {"__name__": "probe"}
    exec(compile(code, "probe.py", "exec"), ns)
    return ns


def serve(ns: dict[str, Any], fd: int, init: Any) -> NoReturn:
    conn = Conn(fd)
    conn.send(p.Hello(os.getpid(), "isoprobe", {"instance": (init or {}).get("instance", "")}))
    serve_frames(conn, ns)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("init")
    args = ap.parse_args()
    init = json.loads(args.init)
    ns = load({"artifact": init["code"].encode()})
    serve(ns, args.fd, init)


if __name__ == "__main__":
    main()
