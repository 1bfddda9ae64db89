"""isolation_seccomp plugin."""
