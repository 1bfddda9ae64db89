"""The file operations the backends do on a cgroup file system (replaceable in tests)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class CgroupError(Exception):
    """A cgroup operation failed; the message names the path and what to check."""


class CgroupFS:
    """Reads and writes cgroupfs files; never creates interface files."""

    def write(self, path: Path, text: str) -> None:
        """Write ``text`` to an existing cgroup interface file in one write(2)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise CgroupError(f"cannot open {path} for writing: {exc.strerror}") from exc
        try:
            os.write(fd, text.encode())
        except OSError as exc:
            raise CgroupError(f"cannot write {text!r} to {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def read(self, path: Path) -> str:
        """The content of ``path``; raise CgroupError if unreadable."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise CgroupError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        except OSError as exc:
            raise CgroupError(f"cannot read {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return b"".join(chunks).decode()

    def exists(self, path: Path) -> bool:
        return os.path.exists(path)

    def mkdir(self, path: Path) -> bool:
        """Create cgroup ``path``; return False if it already existed."""
        try:
            os.mkdir(path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise CgroupError(
                f"cannot create cgroup {path}: {exc.strerror}; run as root or give the daemon a "
                "delegated subtree (docs/isolation-cgroup.md)"
            ) from exc
        return True

    def rmdir(self, path: Path) -> bool:
        """Remove an empty cgroup; False if it was busy (still has tasks or children)."""
        try:
            os.rmdir(path)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                return False
            raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}") from exc
        return True

    def subdirs(self, path: Path) -> list[str]:
        """Names of the child cgroups of ``path`` (empty if it does not exist)."""
        try:
            with os.scandir(path) as it:
                return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
