"""Hook implementations of registry_postgres."""

from __future__ import annotations

from typing import Any

from kernel.hookspecs import hookimpl
from kernel.interfaces import RegistryBackendSpec


def _create(kernel: Any) -> Any:
    from plugins.registry_postgres.backend import PostgresRegistry  # psycopg only when used

    return PostgresRegistry(kernel)


@hookimpl
def noslate_registry_backends() -> list[RegistryBackendSpec]:
    """Register the PostgreSQL registry as ``postgres``."""
    return [RegistryBackendSpec("postgres", _create)]
