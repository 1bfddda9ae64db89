"""A fake cgroup v2 file system in a temporary directory, with the kernel's main rules.

It creates interface files on mkdir (for the controllers the parent enables), refuses
to enable a controller the cgroup does not have, enforces "no internal processes",
moves pids between ``cgroup.procs`` files, and records every successful write.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from plugins.isolation_cgroup.fs import CgroupError, CgroupFS

CONTROLLER_FILES = {
    "memory": {
        "memory.max": "max\n",
        "memory.swap.max": "max\n",
        "memory.oom.group": "0\n",
        "memory.current": "0\n",
        "memory.peak": "0\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    },
    "cpu": {"cpu.max": "max 100000\n", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"},
    "pids": {"pids.max": "max\n"},
}


class FakeCgroupFS(CgroupFS):
    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.writes: list[tuple[str, str]] = []

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.mount))

    def make_root(self, controllers: str) -> None:
        """The mount root: every controller available and enabled for children."""
        self.mount.mkdir(parents=True, exist_ok=True)
        for name, text in {
            "cgroup.controllers": controllers,
            "cgroup.subtree_control": controllers,
            "cgroup.procs": "",
        }.items():
            (self.mount / name).write_text(text)

    def mkdir(self, path: Path) -> bool:
        path = Path(path)
        if path.exists():
            return False
        path.mkdir()
        enabled = (path.parent / "cgroup.subtree_control").read_text().split()
        files = {
            "cgroup.controllers": " ".join(enabled),
            "cgroup.subtree_control": "",
            "cgroup.procs": "",
            "cgroup.kill": "",
            "cgroup.events": "populated 0\nfrozen 0\n",
        }
        for c in enabled:
            files |= CONTROLLER_FILES.get(c, {})
        for name, text in files.items():
            (path / name).write_text(text)
        return True

    def write(self, path: Path, text: str) -> None:
        path = Path(path)
        if not path.exists():
            raise CgroupError(f"cannot open {path} for writing: No such file or directory")
        d, name = path.parent, path.name
        if name == "cgroup.subtree_control":
            have = set((d / "cgroup.controllers").read_text().split())
            now = (d / "cgroup.subtree_control").read_text().split()
            for tok in text.split():
                if tok[1:] not in have:
                    raise CgroupError(f"cannot write {text!r} to {path}: No such file or directory")
            if d != self.mount and (d / "cgroup.procs").read_text().split():
                raise CgroupError(f"cannot write {text!r} to {path}: Device or resource busy")
            now += [t[1:] for t in text.split() if t.startswith("+") and t[1:] not in now]
            path.write_text(" ".join(now))
        elif name == "cgroup.procs":
            if d != self.mount and (d / "cgroup.subtree_control").read_text().split():
                raise CgroupError(f"cannot write {text!r} to {path}: Device or resource busy")
            for procs in self.mount.rglob("cgroup.procs"):
                procs.write_text("".join(f"{p}\n" for p in procs.read_text().split() if p != text))
            path.write_text(path.read_text() + f"{text}\n")
        elif name == "cgroup.kill":
            for procs in d.rglob("cgroup.procs"):
                for pid in procs.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
                procs.write_text("")
        else:
            path.write_text(text)
        self.writes.append((self.rel(path), text))

    def rmdir(self, path: Path) -> bool:
        path = Path(path)
        if not path.exists():
            return True
        if self.subdirs(path) or (path / "cgroup.procs").read_text().split():
            return False
        shutil.rmtree(path)
        return True
