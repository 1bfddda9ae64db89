"""The durable function registry: SQLite (WAL, transactional) under the state dir.

Holds every function's current version (profile JSON, code, prepared artifact,
signature) and the history of versions. Nothing else the daemon holds is durable.
Calls are short synchronous transactions (a few ms at most) made from the trio thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from attrs import frozen

from kernel.errors import DeployError, ProfileError
from kernel.interfaces import FunctionVersion
from kernel.profile import FunctionProfile, parse_profile

log = logging.getLogger("noslate.registry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    filename TEXT NOT NULL,
    code BLOB NOT NULL,
    artifact BLOB NOT NULL,
    deployed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    filename TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    deployed_at REAL NOT NULL,
    deleted_at REAL
);
CREATE INDEX IF NOT EXISTS versions_name ON versions(name, deployed_at);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv_namespaces (
    namespace TEXT PRIMARY KEY,
    owner TEXT NOT NULL
);
"""


@frozen
class StoredFunction:
    """A registry row: the current version plus the source code and its file name."""

    version: FunctionVersion
    filename: str
    code: bytes

    @property
    def name(self) -> str:
        return self.version.name

    def summary(self) -> dict[str, Any]:
        """JSON-able description (no code) for the control API."""
        return {
            "name": self.name,
            "version": self.version.version,
            "runtime": self.version.profile.runtime,
            "filename": self.filename,
            "code_size": len(self.code),
            "deployed_at": self.version.deployed_at,
            "profile": self.version.profile.to_json(),
        }


def signature(code: bytes, profile: FunctionProfile) -> str:
    """The version of a deploy: sha256 of the code and the profile's significant fields."""
    h = hashlib.sha256(code)
    h.update(json.dumps(profile.to_json(), sort_keys=True).encode())
    return "sha256:" + h.hexdigest()


def version_id(code: bytes, profile: FunctionProfile, now: float) -> str:
    """The version id ``put(..., now=now)`` gives (a redeploy of identical code and
    profile still yields a new version record)."""
    return f"{signature(code, profile)[:23]}-{int(now * 1000):x}"


class Registry:
    """SQLite-backed store of deployed functions."""

    def __init__(self, state_dir: Path, max_code_size: int = 10 * 1024 * 1024) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "registry.sqlite3"
        self.max_code_size = max_code_size
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def check_size(self, code: bytes) -> None:
        if len(code) > self.max_code_size:
            raise DeployError(
                f"code is {len(code)} bytes, over the limit of {self.max_code_size} bytes "
                "([server] max_code_size)"
            )

    def put(
        self,
        profile: FunctionProfile,
        code: bytes,
        filename: str,
        artifact: bytes,
        now: float | None = None,
        version: str | None = None,
    ) -> StoredFunction:
        """Store a new version atomically (the previous one stays in the history).

        ``version``: the id a shared registry assigned (else one is made here)."""
        self.check_size(code)
        now = time.time() if now is None else now
        version = version or version_id(code, profile, now)
        pjson = json.dumps(profile.to_json(), sort_keys=True)
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO functions VALUES (?,?,?,?,?,?,?)",
                (profile.name, version, pjson, filename, code, artifact, now),
            )
            self._db.execute(
                "INSERT INTO versions VALUES (?,?,?,?,?,?,NULL)",
                (profile.name, version, pjson, filename, len(code), now),
            )
            self._db.execute(
                "INSERT OR IGNORE INTO kv_namespaces VALUES (?,?)", (profile.kv_namespace, profile.name)
            )
            self._release_namespaces(profile.name, keep=profile.kv_namespace)
        fv = FunctionVersion(profile=profile, version=version, artifact=artifact, deployed_at=now)
        return StoredFunction(fv, filename, code)

    def delete(self, name: str) -> bool:
        with self._tx():
            cur = self._db.execute("DELETE FROM functions WHERE name = ?", (name,))
            self._db.execute(
                "UPDATE versions SET deleted_at = ? WHERE name = ? AND deleted_at IS NULL",
                (time.time(), name),
            )
            self._release_namespaces(name)
        return cur.rowcount > 0

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def versions(self) -> dict[str, str]:
        """name -> current version id."""
        return dict(self._db.execute("SELECT name, version FROM functions").fetchall())

    # ---- KV namespace owners ------------------------------------------------------------

    def namespace_owner(self, namespace: str) -> str | None:
        """The function that owns KV namespace ``namespace``, or None."""
        row = self._db.execute("SELECT owner FROM kv_namespaces WHERE namespace = ?", (namespace,)).fetchone()
        return str(row[0]) if row else None

    def claim_unowned_namespaces(self) -> None:
        """Record an owner for namespaces stored before owners existed (first by name)."""
        with self._tx():
            for name, pjson in self._db.execute(
                "SELECT name, profile FROM functions ORDER BY name"
            ).fetchall():
                self._db.execute(
                    "INSERT OR IGNORE INTO kv_namespaces VALUES (?,?)", (_namespace_of(name, pjson), name)
                )

    def _release_namespaces(self, name: str, keep: str | None = None) -> None:
        """In a transaction: namespaces ``name`` owned (but ``keep``) pass to another
        function still using them (the first by name), or are forgotten."""
        owned = self._db.execute("SELECT namespace FROM kv_namespaces WHERE owner = ?", (name,)).fetchall()
        for (namespace,) in owned:
            if namespace == keep:
                continue
            users = [
                other
                for other, pjson in self._db.execute(
                    "SELECT name, profile FROM functions WHERE name != ? ORDER BY name", (name,)
                ).fetchall()
                if _namespace_of(other, pjson) == namespace
            ]
            if users:
                self._db.execute(
                    "UPDATE kv_namespaces SET owner = ? WHERE namespace = ?", (users[0], namespace)
                )
            else:
                self._db.execute("DELETE FROM kv_namespaces WHERE namespace = ?", (namespace,))

    def get(self, name: str) -> StoredFunction | None:
        row = self._db.execute(
            "SELECT version, profile, filename, code, artifact, deployed_at FROM functions WHERE name = ?",
            (name,),
        ).fetchone()
        if not row:
            return None
        try:
            return self._row(row)
        except ProfileError:
            return None

    def all(self) -> list[StoredFunction]:
        rows = self._db.execute(
            "SELECT name, version, profile, filename, code, artifact, deployed_at "
            "FROM functions ORDER BY name"
        ).fetchall()
        out = []
        for name, *row in rows:
            try:
                out.append(self._row(tuple(row)))
            except ProfileError as exc:  # stored by an older daemon with looser rules
                log.warning(
                    "function %s is not loaded: its stored profile is no longer valid (%s); redeploy it",
                    name,
                    "; ".join(exc.errors),
                )
        return out

    def history(self, name: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT version, filename, code_size, deployed_at, deleted_at FROM versions "
            "WHERE name = ? ORDER BY deployed_at",
            (name,),
        ).fetchall()
        keys = ("version", "filename", "code_size", "deployed_at", "deleted_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def _row(self, row: tuple[Any, ...]) -> StoredFunction:
        version, pjson, filename, code, artifact, deployed_at = row
        profile = parse_profile(json.loads(pjson))
        fv = FunctionVersion(
            profile=profile, version=version, artifact=bytes(artifact), deployed_at=deployed_at
        )
        return StoredFunction(fv, filename, bytes(code))

    def _tx(self) -> Any:
        db = self._db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: Any, *_: Any) -> None:
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()


def _namespace_of(name: str, profile_json: str) -> str:
    """A stored profile's KV namespace (``FunctionProfile.kv_namespace`` without parsing
    the whole profile)."""
    return str(json.loads(profile_json).get("namespace") or name)
