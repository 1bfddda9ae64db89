"""A Python worker speaking kernel.protocol (test-only peer of the kernel).

The deployed code defines ``handle(req, body, host)`` returning
``(status, headers, iterable of bytes)``; ``body`` iterates the request body;
``host`` offers ``log``, ``call(op, args)`` and ``fetch(method, url, headers, body)``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import threading
import traceback
from typing import Any, NoReturn

from kernel import protocol as p


class Conn:
    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.lock = threading.Lock()
        self.buf = p.FrameBuffer()
        self.credits: dict[int, threading.Semaphore] = {}
        self.inboxes: dict[int, queue.Queue] = {}
        self.results: dict[int, queue.Queue] = {}
        self.fetches: dict[int, queue.Queue] = {}
        self.next_id = 1

    def send(self, frame: Any) -> None:
        with self.lock:
            self.sock.sendall(p.encode(frame))

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id


class Host:
    def __init__(self, conn: Conn, rid: int) -> None:
        self.conn = conn
        self.rid = rid

    def log(self, level: str, message: str) -> None:
        self.conn.send(p.Log(level, message, self.rid))

    def call(self, op: str, args: list[Any]) -> Any:
        cid = self.conn.new_id()
        q = self.conn.results[cid] = queue.Queue()
        self.conn.send(p.Call(cid, op, args))
        r = q.get(timeout=30)
        if not r.ok:
            raise RuntimeError(f"{r.error_name}: {r.error_message}")
        return r.value

    def fetch(self, method: str, url: str, headers: list | None = None, body: bytes | None = None):
        fid = self.conn.new_id()
        q = self.conn.fetches[fid] = queue.Queue()
        self.conn.inboxes[-fid] = q
        self.conn.send(p.Fetch(fid, method, url, headers or [], body is not None, "follow", self.rid))
        if body is not None:
            self.conn.send(p.Chunk(-fid, body))
            self.conn.send(p.End(-fid))
        head = q.get(timeout=30)
        if isinstance(head, p.FetchError):
            raise RuntimeError(f"{head.error_name}: {head.message}")
        chunks = []
        while True:
            item = q.get(timeout=30)
            if isinstance(item, p.Chunk):
                chunks.append(item.data)
                self.conn.send(p.Ack(-fid, 1))
            elif isinstance(item, p.End):
                break
            else:
                raise RuntimeError(f"subresponse aborted: {item.reason}")
        return head.status, head.headers, b"".join(chunks)


def request_body(conn: Conn, rid: int, q: queue.Queue):
    while True:
        item = q.get()
        if isinstance(item, p.Chunk):
            yield item.data
            conn.send(p.Ack(rid, 1))
        elif isinstance(item, p.End):
            return
        else:
            raise RuntimeError("request aborted")


def serve_request(conn: Conn, ns: dict, f: p.Request, q: queue.Queue) -> None:
    body = request_body(conn, f.rid, q) if f.has_body else iter(())
    req = {"method": f.method, "url": f.url, "headers": f.headers, "rid": f.rid}
    try:
        status, headers, chunks = ns["handle"](req, body, Host(conn, f.rid))
    except SystemExit:
        os._exit(3)
    except Exception as exc:
        conn.send(p.Failure(f.rid, 500, "uncaught exception", "".join(traceback.format_exception(exc))))
        return
    credit = conn.credits[f.rid] = threading.Semaphore(p.WINDOW)
    conn.send(p.Response(f.rid, status, headers, True))
    try:
        for chunk in chunks:
            for i in range(0, len(chunk), p.MAX_CHUNK):
                credit.acquire()
                conn.send(p.Chunk(f.rid, chunk[i : i + p.MAX_CHUNK]))
    except SystemExit:
        os._exit(3)
    except Exception as exc:
        conn.send(p.Failure(f.rid, 500, "stream failed", repr(exc)))
        return
    conn.send(p.End(f.rid))


def serve_frames(conn: Conn, ns: dict[str, Any]) -> NoReturn:
    """Dispatch frames from the daemon until EOF or ``Shutdown`` (then ``os._exit(0)``):
    each ``Request`` is served by ``ns["handle"]`` on its own thread."""
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
            elif isinstance(f, p.Result):
                conn.results.pop(f.cid).put(f)
            elif isinstance(f, (p.FetchResponse, p.FetchError)):
                conn.fetches[f.fid].put(f)
            elif isinstance(f, p.Shutdown):
                os._exit(0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", type=int)
    ap.add_argument("init")
    args = ap.parse_args()
    init = json.loads(args.init)
    conn = Conn(args.fd)
    ns: dict[str, Any] = {"INIT": init}
    exec(compile(init["code"], "worker.py", "exec"), ns)
    flag = (init.get("env") or {}).get("TESTKIT_DIE_BEFORE_HELLO_ONCE")
    if flag and os.path.exists(flag):  # one instance dies before it reads anything
        os.unlink(flag)
        os._exit(3)
    conn.send(p.Hello(os.getpid(), "pytest", {"instance": init["instance"]}))
    serve_frames(conn, ns)


if __name__ == "__main__":
    main()
