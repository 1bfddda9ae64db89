"""The fork-per-request design at its leanest: a same-run reference for warmfork.

The design the warmfork goals were set from (``measured-facts.md``: "a throwaway
end-to-end prototype"), rebuilt with nothing else in it: a hypercorn + trio server and
a separate single-threaded seed process holding an STPyV8 context with one trivial
handler (no Web runtime, no kernel, no scheduler, no isolation, no accounting). For
every request the server passes one end of a new socketpair to the seed (SCM_RIGHTS)
and reads the body from it until EOF:

* ``--mode fork``: the seed forks a child that calls the handler, writes and exits;
* ``--mode spare``: the seed hands the socket to a child it forked (and warmed with one
  handler call) before the request came, then forks the next one.

Run: ``python -m bench.apps.fork_ceiling --port N --mode fork|spare``. The seed is
forked before trio and hypercorn are imported, so it holds only Python and STPyV8.
"""

from __future__ import annotations

import argparse
import array
import gc
import os
import signal
import socket
from typing import Any, NoReturn

HANDLER = "(function () { return 'Hello, world!'; })"
"""The workloads' trivial script answers the same body (``bench.workloads.HELLO``)."""
ANC = socket.CMSG_SPACE(4)


def _received_fd(sock: socket.socket) -> int | None:
    msg, anc, _flags, _addr = sock.recvmsg(16, ANC)
    if not msg:
        return None
    fds = array.array("i")
    fds.frombytes(anc[0][2][: fds.itemsize])
    return fds[0]


def _answer(handle: Any, fd: int) -> NoReturn:
    os.write(fd, handle().encode())
    os._exit(0)


def _fork_spare(handle: Any, control: socket.socket) -> socket.socket:
    """A child, warmed by one handler call, that answers the socket it is given."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.fork() == 0:
        control.close()
        ours.close()
        handle()
        fd = _received_fd(theirs)
        if fd is None:
            os._exit(0)
        _answer(handle, fd)
    theirs.close()
    return ours


def _reap() -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_seed(control: socket.socket, spare: bool) -> NoReturn:
    """The seed: load STPyV8 and the handler, then one child per request."""
    import _STPyV8  # type: ignore[import-not-found]

    _STPyV8.JSEngine.setFlags("--single-threaded")  # before STPyV8 starts its platform
    import STPyV8  # type: ignore[import-not-found]

    ctx = STPyV8.JSContext()
    ctx.enter()
    handle = ctx.eval(HANDLER)
    handle()
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    waiting = _fork_spare(handle, control) if spare else None
    while True:
        fd = _received_fd(control)
        if fd is None:
            os._exit(0)  # the server is gone
        if waiting is not None:
            waiting.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            waiting.close()
            os.close(fd)
            waiting = _fork_spare(handle, control)
        elif os.fork() == 0:
            control.close()
            _answer(handle, fd)
        else:
            os.close(fd)
        _reap()


def serve(control: socket.socket, port: int) -> None:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    lock = trio.Lock()
    sender = trio.socket.from_stdlib_socket(control)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        ours, theirs = socket.socketpair()
        with ours, theirs:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [theirs.fileno()]))]
            async with lock:
                await sender.sendmsg([b"f"], anc)
            theirs.close()
            reader = trio.socket.from_stdlib_socket(ours)
            body = b""
            while data := await reader.recv(65536):
                body += data
        length = str(len(body)).encode()
        headers = [(b"content-type", b"text/plain;charset=UTF-8"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    trio.run(hypercorn_serve, app, config)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.apps.fork_ceiling", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("fork", "spare"), default="fork")
    args = parser.parse_args()
    server_end, seed_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.fork() == 0:
        server_end.close()
        run_seed(seed_end, args.mode == "spare")
    seed_end.close()
    serve(server_end, args.port)


if __name__ == "__main__":
    main()
