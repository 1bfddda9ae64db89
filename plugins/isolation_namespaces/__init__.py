"""isolation_namespaces plugin."""
