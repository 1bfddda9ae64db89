"""Throwaway PostgreSQL servers on loopback (initdb + pg_ctl, temp dirs): tests and bench.

As root, the server runs as Debian's ``postgres`` user (PostgreSQL refuses root).
Skips only where the binaries are missing (``make setup`` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Postgres:
    """One PostgreSQL cluster in ``root``; ``dsn`` reaches its ``noslate`` database."""

    def __init__(self) -> None:
        bindir = pg_bin()
        assert bindir is not None, "PostgreSQL is not installed"
        self.bin = bindir
        # its own directory: pytest's are 0700 root, which the postgres user cannot enter
        self.root = Path(tempfile.mkdtemp(prefix="noslate-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.dsn = f"postgresql://noslate@127.0.0.1:{self.port}/noslate"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check, cwd="/")

    def init(self) -> Postgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, self.user, self.user)
            os.chmod(self.root, 0o755)
        self._run("initdb", "-D", str(self.data), "-U", "noslate", "--auth=trust", "-E", "UTF8")
        return self.start()

    def start(self) -> Postgres:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "pg.log"), "-o", opts, "-w", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(
                    f"postgresql://noslate@127.0.0.1:{self.port}/postgres", connect_timeout=2
                ) as c:
                    c.autocommit = True
                    if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'noslate'").fetchone():
                        c.execute("CREATE DATABASE noslate")
                return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start: {(self.root / 'pg.log').read_text()[-2000:]}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn, connect_timeout=5, autocommit=True) as conn:
            cur = conn.execute(sql, args or None)
            return cur.fetchall() if cur.description else []
