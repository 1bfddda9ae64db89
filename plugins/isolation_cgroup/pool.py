"""Idle instance cgroups kept for reuse: bookkeeping only (the manager does the I/O).

Creating and removing an instance cgroup (a mkdir and rmdir per v1 hierarchy, plus the
limit writes) costs milliseconds of kernel time; a disposable function would pay it per
request. Instead an exited instance's cgroup, once verified empty, is parked here and
handed to the function's next process.
"""

from __future__ import annotations

from attrs import define, field

from kernel.sandbox import Resources

LimitsKey = tuple[int | None, int | None, int, int | None]


def limits_key(res: Resources) -> LimitsKey:
    """What must match for a parked cgroup to be reused without rewriting limits."""
    return (res.memory_limit, res.cpu_quota, res.cpu_period, res.pids_limit)


@define
class Slot:
    """One instance cgroup, in use or parked."""

    name: str
    """Cgroup name relative to the backend base: ``<daemon>/<function>/slot-<n>``."""
    limits: Resources
    oom_base: int = 0
    """The cgroup's OOM-kill counter when it was last parked: kills are counted as a delta."""
    cpu_base: int = 0
    """CPU usage (µs) accumulated by earlier users of the cgroup."""
    idle_since: float = 0.0

    @property
    def function_dir(self) -> str:
        return self.name.rpartition("/")[0]


@define
class IdlePool:
    """Parked slots per function directory, most recently parked last."""

    by_function: dict[str, list[Slot]] = field(factory=dict)

    def take(self, function_dir: str, key: LimitsKey) -> tuple[Slot | None, bool]:
        """A parked slot of ``function_dir`` (same limits preferred); (slot, limits_match)."""
        slots = self.by_function.get(function_dir)
        if not slots:
            return None, False
        for i in range(len(slots) - 1, -1, -1):
            if limits_key(slots[i].limits) == key:
                return slots.pop(i), True
        return slots.pop(), False

    def put(self, slot: Slot) -> None:
        self.by_function.setdefault(slot.function_dir, []).append(slot)

    def count(self, function_dir: str) -> int:
        return len(self.by_function.get(function_dir, ()))

    def surplus(self, function_dir: str, keep: int) -> list[Slot]:
        """Remove and return the oldest slots beyond ``keep``."""
        slots = self.by_function.get(function_dir, [])
        extra = max(0, len(slots) - keep)
        out, slots[:] = slots[:extra], slots[extra:]
        return out

    def expired(self, now: float, ttl: float) -> list[Slot]:
        """Remove and return every slot parked for longer than ``ttl`` seconds."""
        out = []
        for slots in self.by_function.values():
            old = [s for s in slots if now - s.idle_since >= ttl]
            if old:
                slots[:] = [s for s in slots if now - s.idle_since < ttl]
                out += old
        return out

    def functions(self) -> list[str]:
        return list(self.by_function)

    def forget(self, function_dir: str) -> None:
        self.by_function.pop(function_dir, None)

    def total(self) -> int:
        return sum(len(s) for s in self.by_function.values())

    def clear(self) -> None:
        self.by_function.clear()
