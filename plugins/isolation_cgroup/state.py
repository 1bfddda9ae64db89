"""The plugin's process-wide state: config, manager, the daemon's kernel, OOM reporting."""

from __future__ import annotations

import logging
from typing import Any

from kernel.errors import StartupError
from kernel.interfaces import SpawnInfo
from plugins.isolation_cgroup.config import CgroupConfig
from plugins.isolation_cgroup.manager import CgroupManager, Unusable

log = logging.getLogger("noslate.isolation_cgroup")


class State:
    """Filled by the lifecycle hooks; read by the layer."""

    def __init__(self) -> None:
        self.config = CgroupConfig()
        self.manager: CgroupManager | None = None
        self.kernel: Any = None
        self.unusable: str = ""
        self.oom_kills: dict[str, int] = {}

    @property
    def active(self) -> bool:
        return self.config.enabled and self.manager is not None

    def start(self, kernel: Any, manager_factory: Any = CgroupManager) -> None:
        """Create the daemon's tree; raise StartupError or warn when unusable."""
        self.kernel = kernel
        if not self.config.enabled:
            return
        try:
            manager = manager_factory(self.config)
            manager.start()
        except (Unusable, OSError) as exc:
            self.unusable = str(exc)
            what = (
                f"isolation_cgroup: cgroups are unusable: {exc}. Run the daemon as root, or under "
                "systemd with Delegate=yes, or in a container given a writable cgroup subtree "
                "(docs/isolation-cgroup.md)."
            )
            if self.config.required:
                raise StartupError(
                    what + " To run WITHOUT memory/CPU/pids limits set "
                    "[plugins.isolation_cgroup] required = false."
                ) from exc
            banner = "!" * 78
            log.warning("%s\n%s\nWORKERS RUN WITHOUT MEMORY, CPU OR PIDS LIMITS.\n%s", banner, what, banner)
            return
        self.manager = manager
        log.info("isolation_cgroup: %s", manager.report())

    async def run_trimmer(self, *, task_status: Any = None) -> None:
        """Service: remove parked cgroups that stayed idle (``pool_idle_seconds``)."""
        import trio

        if task_status is not None:
            task_status.started()
        period = max(1.0, self.config.pool_idle_seconds / 2)
        while True:
            await trio.sleep(period)
            manager = self.manager
            if manager is not None:
                await trio.to_thread.run_sync(manager.trim)

    def stop(self) -> None:
        if self.manager is not None:
            self.manager.shutdown()
            self.manager = None

    def on_oom(self, info: SpawnInfo, limit: int | None, usage: dict[str, Any]) -> None:
        """Note an OOM kill in the daemon log and the capability report.

        The kernel turns the ``"oom"`` cause into the client's 502, the function-log line
        and the ``noslate_oom_kills`` metric (kernel/daemon.py), so they are not repeated here.
        """
        self.oom_kills[info.function] = self.oom_kills.get(info.function, 0) + 1
        peak = usage.get("memory_peak_bytes")
        log.warning(
            "%s %s of function %s@%s was OOM-killed by the kernel at its memory limit of %s bytes%s",
            info.role,
            info.instance,
            info.function,
            info.version,
            limit,
            f" (peak usage {peak} bytes)" if peak else "",
        )

    def report(self) -> dict[str, Any]:
        if not self.config.enabled:
            return {"enabled": False}
        if self.manager is None and self.unusable:
            return {"enabled": True, "usable": False, "reason": self.unusable}
        if self.manager is None:  # before start-up: what the host offers
            from plugins.isolation_cgroup.mountinfo import detect

            try:
                layout = detect()
            except OSError as exc:
                return {"enabled": True, "usable": False, "reason": f"cannot read mountinfo: {exc}"}
            return {
                "enabled": True,
                "usable": None,
                "host": layout.mode,
                "v1_controllers": sorted(layout.v1),
                "v2_controllers": list(layout.v2_controllers()),
            }
        return self.manager.report() | {"oom_kills": dict(self.oom_kills)}


STATE = State()
