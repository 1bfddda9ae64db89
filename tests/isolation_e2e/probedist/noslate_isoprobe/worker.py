"""The probe worker: ``load`` (seed or cold: runs the deployed code) and ``serve``
(instance or cold: speaks kernel.protocol on ``fd``; leaves only via ``os._exit``).

Reuses the request loop of the kernel tests' Python worker (noslate_testkit).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import threading
from typing import Any, NoReturn

from noslate_testkit.worker import Conn, serve_request

from kernel import protocol as p


def load(payload: dict[str, Any]) -> dict[str, Any]:
    code = payload["artifact"]
    ns: dict[str, Any] = {"__name__": "probe"}
    exec(compile(code, "probe.py", "exec"), ns)
    return ns


def serve(ns: dict[str, Any], fd: int, init: Any) -> NoReturn:
    conn = Conn(fd)
    conn.send(p.Hello(os.getpid(), "isoprobe", {"instance": (init or {}).get("instance", "")}))
    while True:
        data = conn.sock.recv(262144)
        if not data:
            os._exit(0)
        for f in conn.buf.feed(data):
            if isinstance(f, p.Request):
                q = conn.inboxes[f.rid] = queue.Queue()
                threading.Thread(target=serve_request, args=(conn, ns, f, q), daemon=True).start()
            elif isinstance(f, (p.Chunk, p.End, p.Abort)) and f.sid in conn.inboxes:
                conn.inboxes[f.sid].put(f)
            elif isinstance(f, p.Ack) and f.sid in conn.credits:
                for _ in range(f.n):
                    conn.credits[f.sid].release()
            elif isinstance(f, p.Shutdown):
                os._exit(0)


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
