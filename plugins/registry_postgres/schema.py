"""The registry's schema, created and migrated by the daemon (or ``noslate db migrate``)."""

from __future__ import annotations

SCHEMA_VERSION = 1
CHANNEL = "noslate_registry"
"""The LISTEN/NOTIFY channel; the payload is the changed function's name."""

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS noslate_functions (
            name TEXT PRIMARY KEY,
            version TEXT NOT NULL,
            profile TEXT NOT NULL,
            filename TEXT NOT NULL,
            code BYTEA NOT NULL,
            artifact BYTEA NOT NULL,
            deployed_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS noslate_versions (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            profile TEXT NOT NULL,
            filename TEXT NOT NULL,
            code_size INTEGER NOT NULL,
            deployed_at DOUBLE PRECISION NOT NULL,
            deleted_at DOUBLE PRECISION
        )""",
        "CREATE INDEX IF NOT EXISTS noslate_versions_name ON noslate_versions (name, deployed_at)",
        """CREATE TABLE IF NOT EXISTS noslate_kv_namespaces (
            namespace TEXT PRIMARY KEY,
            owner TEXT NOT NULL
        )""",
    ],
}
"""Statements that bring the schema from version ``n - 1`` to ``n``."""


class SchemaTooNew(Exception):
    """The database was migrated by a newer noslate than this one."""
