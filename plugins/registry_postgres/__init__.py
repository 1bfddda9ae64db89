"""registry_postgres: a PostgreSQL function registry shared by many daemons.

``[registry] backend = "postgres"`` with ``[registry] dsn`` (or ``NOSLATE_REGISTRY_DSN``).
Every daemon deploys through it (one transaction per deploy, the version assigned
once), hears of others' changes through LISTEN/NOTIFY, resyncs periodically, and keeps
serving from its local SQLite cache while the database is away. docs/cluster.md.
"""
