"""isolation_namespaces: mount, pid, network, ipc and uts namespaces and a read-only root.

Quickstart (``noslate.toml``)::

    [plugins.isolation_namespaces]
    namespaces = ["mount", "pid", "network", "ipc", "uts"]
    rootfs = true            # pivot_root into a minimal read-only root
    tmp_size = 16777216      # private /tmp cap, bytes

Each seed (or cold worker) gets its own namespaces and is pid 1 of its pid namespace;
its instances share them. See docs/isolation-seccomp.md.
"""
