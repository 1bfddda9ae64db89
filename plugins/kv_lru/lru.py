"""LRU tables sharing one byte budget, with exact accounting and a TTL index.

A :class:`Space` is one namespace's budget (its KV stores, or its caches); a
:class:`Table` is one store or cache in it. Every entry has a size the caller computes
(key bytes + value bytes for KV); the space's ``bytes`` is always the exact sum of its
live entries' sizes: it goes down on delete, overwrite, eviction and expiry.

Nothing here awaits, so each operation is atomic under trio.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from attrs import define
from sortedcontainers import SortedList

from kernel.interfaces import KVError

Clock = Callable[[], float]
"""Monotonic seconds; tests inject a fake one."""


@define(slots=True)
class Entry:
    """One live entry."""

    value: Any
    size: int
    tick: int
    """Recency stamp: higher is more recently used (comparable across a space's tables)."""
    expires_at: float | None
    created: int
    """Insertion stamp (the Cache API lists keys in insertion order)."""


@define(slots=True)
class Stats:
    """Counters of one table."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0


def over_quota(kind: str, key: str, size: int, namespace: str, quota: int) -> KVError:
    """The error for an entry larger than its namespace's whole quota."""
    return KVError(
        "QuotaExceededError",
        f"{kind} entry {key!r} needs {size} bytes but the quota of namespace "
        f"{namespace!r} is {quota} bytes; store a smaller value or raise "
        f"the quota in [plugins.kv_lru]",
    )


class Table:
    """One store or cache: entries in LRU order, least recently used first."""

    def __init__(self, space: Space, name: str, max_entries: int) -> None:
        self.space = space
        self.name = name
        self.max_entries = max_entries
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0
        self.stats = Stats()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str, *, touch: bool = True) -> Entry | None:
        """Return the live entry for ``key`` (marking it most recently used), or None."""
        self.space.purge()
        entry = self.entries.get(key)
        if entry is not None and touch:
            self.entries.move_to_end(key)
            entry.tick = self.space.next_tick()
        return entry

    def put(self, key: str, value: Any, size: int, ttl_s: float | None = None) -> None:
        """Insert or replace ``key``, evicting LRU entries to stay within the limits.

        Raises QuotaExceededError when ``size`` alone exceeds the space's quota (the
        table is left unchanged then).
        """
        space = self.space
        if size > space.quota:
            raise over_quota(space.kind, key, size, space.name, space.quota)
        space.purge()
        old = self.entries.get(key)
        if old is not None:
            self._remove(key, old)
        while len(self.entries) >= self.max_entries:
            self._evict_head()
        while space.bytes + size > space.quota:
            space.evict_one()
        now = space.clock()
        expires_at = None if ttl_s is None else now + ttl_s
        tick = space.next_tick()
        entry = Entry(value, size, tick, expires_at, created=old.created if old else tick)
        self.entries[key] = entry
        self.bytes += size
        space.bytes += size
        if expires_at is not None:
            space.expiry.add((expires_at, self.name, key))

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was live."""
        self.space.purge()
        entry = self.entries.get(key)
        if entry is None:
            return False
        self._remove(key, entry)
        return True

    def clear(self) -> None:
        """Remove every entry (their bytes are released)."""
        for key, entry in list(self.entries.items()):
            self._remove(key, entry)

    def keys(self) -> list[str]:
        """Live keys, least recently used first."""
        self.space.purge()
        return list(self.entries)

    def items(self) -> Iterator[tuple[str, Entry]]:
        """Live entries (purge first with :meth:`Space.purge`)."""
        return iter(list(self.entries.items()))

    def head_tick(self) -> int | None:
        """Recency stamp of the least recently used entry, or None when empty."""
        if not self.entries:
            return None
        return next(iter(self.entries.values())).tick

    def _evict_head(self) -> None:
        key, entry = next(iter(self.entries.items()))
        self._remove(key, entry)
        self.stats.evictions += 1

    def _remove(self, key: str, entry: Entry) -> None:
        del self.entries[key]
        self.bytes -= entry.size
        self.space.bytes -= entry.size
        if entry.expires_at is not None:
            self.space.expiry.discard((entry.expires_at, self.name, key))


class Space:
    """One namespace's tables and their shared byte budget."""

    def __init__(self, name: str, kind: str, quota: int, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.kind = kind
        self.quota = quota
        self.clock = clock
        self.tables: dict[str, Table] = {}
        self.bytes = 0
        self.expiry: SortedList = SortedList()
        """``(expires_at, table, key)`` of every entry with a TTL, soonest first."""
        self._ticks = itertools.count(1)

    def next_tick(self) -> int:
        """A fresh recency stamp."""
        return next(self._ticks)

    def purge(self) -> int:
        """Remove every entry whose TTL has passed; return how many."""
        expiry = self.expiry
        if not expiry:
            return 0
        now = self.clock()
        n = 0
        while expiry and expiry[0][0] <= now:
            _, table_name, key = expiry[0]
            table = self.tables[table_name]
            table._remove(key, table.entries[key])
            table.stats.expirations += 1
            n += 1
        return n

    def evict_one(self) -> None:
        """Evict the least recently used entry of the whole space."""
        victim: Table | None = None
        oldest = 0
        for table in self.tables.values():
            tick = table.head_tick()
            if tick is not None and (victim is None or tick < oldest):
                victim, oldest = table, tick
        if victim is None:  # cannot happen while bytes > 0; guards an endless loop
            raise RuntimeError(f"{self.kind} space {self.name!r} is over quota but has no entries")
        victim._evict_head()

    def drop(self, name: str) -> bool:
        """Remove table ``name`` and its entries; True if it existed."""
        table = self.tables.pop(name, None)
        if table is None:
            return False
        table.clear()
        return True

    def entry_count(self) -> int:
        """Live entries in every table."""
        return sum(len(t) for t in self.tables.values())
