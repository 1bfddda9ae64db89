"""The worker side: assemble the minimal read-only root and pivot into it.

Runs inside the new mount namespace (mounts are private: the host sees nothing).
Layout: a small tmpfs on ``root.path`` holding empty mount points, read-only binds of
the runtime's files at their host paths, a fresh /proc, a /dev with five device nodes,
a private /tmp; then ``pivot_root`` and the old root detached.
"""

from __future__ import annotations

import os

from kernel.sandbox import Mount, Sandbox
from plugins.isolation_namespaces import linux as L

_FLAG_OPTS = {"nosuid": L.MS_NOSUID, "nodev": L.MS_NODEV, "noexec": L.MS_NOEXEC}
PUT_OLD = ".oldroot"


def _split(options: list[str]) -> tuple[int, str | None, bool]:
    flags, data, ro = 0, [], False
    for opt in options:
        if opt in _FLAG_OPTS:
            flags |= _FLAG_OPTS[opt]
        elif opt == "ro":
            ro = True
        elif opt == "rbind":
            flags |= L.MS_BIND | L.MS_REC
        elif opt == "bind":
            flags |= L.MS_BIND
        elif opt != "rw":
            data.append(opt)
    return flags, ",".join(data) or None, ro


def _make_target(target: str, source: str, is_bind: bool) -> None:
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if is_bind and not os.path.isdir(source):
        if not os.path.exists(target):
            with open(target, "wb"):
                pass
    else:
        os.makedirs(target, mode=0o755, exist_ok=True)


def apply_mount(root: str, m: Mount) -> None:
    target = os.path.join(root, m.destination.lstrip("/"))
    flags, data, ro = _split(m.options)
    is_bind = bool(flags & L.MS_BIND) or m.type == "bind"
    if is_bind and os.path.islink(m.source):
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(m.source), target)
        return
    if is_bind and not os.path.exists(m.source):
        return
    _make_target(target, m.source, is_bind)
    if is_bind:
        L.mount(m.source, target, None, flags | L.MS_BIND)
        extra = flags & (L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
        L.mount(None, target, None, L.MS_REMOUNT | L.MS_BIND | extra | (L.MS_RDONLY if ro else 0))
    else:
        L.mount(m.source, target, m.type, flags | (L.MS_RDONLY if ro else 0), data)


def _write_etc(root: str, sandbox: Sandbox) -> None:
    etc = os.path.join(root, "etc")
    os.makedirs(etc, mode=0o755, exist_ok=True)
    user = sandbox.process.user
    files = {
        "passwd": f"root:x:0:0::/:/sbin/nologin\nworker:x:{user.uid}:{user.gid}::/tmp:/sbin/nologin\n",
        "group": f"root:x:0:\nworker:x:{user.gid}:\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "hostname": (sandbox.hostname or "localhost") + "\n",
    }
    for name, text in files.items():
        path = os.path.join(etc, name)
        if not os.path.lexists(path):
            with open(path, "w") as f:
                f.write(text)


def _mask(root: str, path: str) -> None:
    target = os.path.join(root, path.lstrip("/"))
    if os.path.isdir(target):
        L.mount("tmpfs", target, "tmpfs", L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV, "size=0,mode=000")
    elif os.path.exists(target):
        L.mount("/dev/null", target, None, L.MS_BIND)


def build_and_pivot(sandbox: Sandbox) -> None:
    """Make ``/`` private, assemble the root on ``sandbox.root.path``, pivot into it."""
    assert sandbox.root is not None
    root = sandbox.root.path
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    os.makedirs(root, mode=0o755, exist_ok=True)
    L.mount("tmpfs", root, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=1048576,mode=755")
    for m in sandbox.mounts:
        apply_mount(root, m)
    _write_etc(root, sandbox)
    for path in sandbox.linux.maskedPaths:
        _mask(root, path)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        link = os.path.join(root, "dev", name)
        if os.path.isdir(os.path.join(root, "dev")) and not os.path.lexists(link):
            os.symlink(target, link)
    put_old = os.path.join(root, PUT_OLD)
    os.makedirs(put_old, mode=0o700, exist_ok=True)
    L.pivot_root(root, put_old)
    os.chdir("/")
    L.umount2("/" + PUT_OLD, L.MNT_DETACH)
    os.rmdir("/" + PUT_OLD)
    if sandbox.root.readonly:
        L.mount(None, "/", None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)
