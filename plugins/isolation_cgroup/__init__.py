"""isolation_cgroup plugin."""
