"""isolation_seccomp: seccomp filter, credentials, capabilities and rlimits for workers.

Quickstart (``noslate.toml``)::

    [plugins.isolation_seccomp]
    mode = "denylist"          # or "allowlist" (default EPERM, never kill)
    violation = "errno"        # or "kill"
    user = ""                  # noslate-worker if it exists, else nobody

The daemon fills each worker's sandbox (``noslate_sandbox_contribute``); the launcher
applies the layers (rlimits, capabilities, setuid, no_new_privs, pdeathsig, seccomp) in
the new process before user code runs. See docs/isolation-seccomp.md.
"""
