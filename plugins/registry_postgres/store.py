"""The PostgreSQL store: psycopg (sync) in worker threads, LISTEN in a thread of its own.

Every call has a deadline (``connect_timeout`` for connecting, the same as the
statement timeout). A failure to reach the database raises
:class:`kernel.interfaces.RegistryUnavailable` naming the host, port and database,
never the password.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from kernel.interfaces import FunctionVersion, RegistryUnavailable
from kernel.profile import parse_profile
from kernel.registry import StoredFunction
from plugins.registry_postgres.schema import CHANNEL, MIGRATIONS, SCHEMA_VERSION, SchemaTooNew

log = logging.getLogger("noslate.registry_postgres")


def describe(dsn: str) -> str:
    """``postgres at HOST:PORT/DB`` for messages (no user, no password)."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgres (an unparsable DSN)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"postgres at {host}:{port}/{info.get('dbname') or info.get('user') or ''}"


class BadDSN(Exception):
    """The DSN cannot work (unparsable, wrong credentials, no such database)."""


class PostgresStore:
    """Synchronous operations on the registry tables (run them in threads)."""

    def __init__(self, dsn: str, timeout: float) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self.where = describe(dsn)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    # ---- connection -------------------------------------------------------------
    def connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.dsn,
                connect_timeout=max(1, int(self.timeout)),
                options=f"-c statement_timeout={int(self.timeout * 1000)}",
                autocommit=True,
            )
        except psycopg.ProgrammingError as exc:
            raise BadDSN(f"{self.where}: the DSN is not valid: {_reason(exc)}") from None
        except psycopg.OperationalError as exc:
            reason = _reason(exc)
            if "authentication failed" in reason or "does not exist" in reason:
                raise BadDSN(f"{self.where}: {reason}") from None
            raise RegistryUnavailable(
                f"the function registry database ({self.where}) is unavailable: {reason}"
            ) from None
        return conn

    @contextlib.contextmanager
    def conn(self) -> Iterator[psycopg.Connection[Any]]:
        """The shared connection (one statement at a time), reconnecting when broken."""
        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = self.connect()
            try:
                yield self._conn
            except psycopg.OperationalError as exc:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
                raise RegistryUnavailable(
                    f"the function registry database ({self.where}) is unavailable: {_reason(exc)}"
                ) from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- schema -----------------------------------------------------------------
    def migrate(self) -> int:
        """Create or migrate the schema; return its version. Refuses a newer schema."""
        with self.conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('noslate_schema'))")
            conn.execute("CREATE TABLE IF NOT EXISTS noslate_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM noslate_schema").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.where}: the registry schema is version {current}, newer than this noslate's "
                    f"{SCHEMA_VERSION}: upgrade noslate (it never downgrades a schema)"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute("INSERT INTO noslate_schema VALUES (%s)", (version,))
                log.info("%s: registry schema migrated to version %d", self.where, version)
            return SCHEMA_VERSION

    # ---- functions --------------------------------------------------------------
    def put(self, stored: StoredFunction) -> None:
        fv = stored.version
        profile = json.dumps(fv.profile.to_json(), sort_keys=True)
        with self.conn() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO noslate_functions VALUES (%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (name) DO UPDATE SET "
                "version = EXCLUDED.version, profile = EXCLUDED.profile, filename = EXCLUDED.filename, "
                "code = EXCLUDED.code, artifact = EXCLUDED.artifact, deployed_at = EXCLUDED.deployed_at",
                (fv.name, fv.version, profile, stored.filename, stored.code, fv.artifact, fv.deployed_at),
            )
            conn.execute(
                "INSERT INTO noslate_versions VALUES (%s,%s,%s,%s,%s,%s,NULL)",
                (fv.name, fv.version, profile, stored.filename, len(stored.code), fv.deployed_at),
            )
            conn.execute(
                "INSERT INTO noslate_kv_namespaces VALUES (%s,%s) ON CONFLICT DO NOTHING",
                (fv.profile.kv_namespace, fv.name),
            )
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, fv.name))

    def delete(self, name: str) -> bool:
        with self.conn() as conn, conn.transaction():
            cur = conn.execute("DELETE FROM noslate_functions WHERE name = %s", (name,))
            conn.execute(
                "UPDATE noslate_versions SET deleted_at = %s WHERE name = %s AND deleted_at IS NULL",
                (time.time(), name),
            )
            conn.execute("DELETE FROM noslate_kv_namespaces WHERE owner = %s", (name,))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, name))
            return cur.rowcount > 0

    def get(self, name: str) -> StoredFunction | None:
        with self.conn() as conn:
            row = conn.execute(
                "SELECT version, profile, filename, code, artifact, deployed_at FROM noslate_functions "
                "WHERE name = %s",
                (name,),
            ).fetchone()
        if row is None:
            return None
        version, profile, filename, code, artifact, deployed_at = row
        fv = FunctionVersion(parse_profile(json.loads(profile)), version, bytes(artifact), float(deployed_at))
        return StoredFunction(fv, filename, bytes(code))

    def versions(self) -> dict[str, str]:
        with self.conn() as conn:
            return dict(conn.execute("SELECT name, version FROM noslate_functions").fetchall())

    # ---- notifications ----------------------------------------------------------
    def listen(
        self, deliver: Callable[[str], None], stop: threading.Event, on_reconnect: Callable[[], None]
    ) -> None:
        """Block (in a thread), calling ``deliver(name)`` per notification until ``stop``.

        A lost connection is retried every second; ``on_reconnect()`` runs after each
        reconnection (a notification may have been missed meanwhile)."""
        first = True
        while not stop.is_set():
            try:
                conn = self.connect()
            except (RegistryUnavailable, BadDSN) as exc:
                log.debug("LISTEN: %s", exc)
                stop.wait(1.0)
                continue
            try:
                with conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if not first:
                        on_reconnect()
                    first = False
                    while not stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            deliver(notify.payload)
            except psycopg.Error as exc:
                log.warning("%s: notifications lost (%s); reconnecting", self.where, _reason(exc))
                stop.wait(1.0)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
