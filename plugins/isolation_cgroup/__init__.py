"""isolation_cgroup: per-instance memory, CPU and pids limits with cgroup v2 or v1.

Quickstart: enabled by default. The daemon creates ``<parent>/<root>/daemon-<pid>-<start>``
and under it one cgroup per function and one per worker process, carrying the profile's
``resourceLimit`` (memory bytes, CPU fraction of a core, pids). When a worker dies the
layer tells whether the kernel OOM-killed it (``release()`` returns ``"oom"``).
Reference: ``docs/isolation-cgroup.md``.
"""
