"""The ``postgres`` shared registry (:class:`kernel.interfaces.SharedRegistry`)."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import trio

from kernel.errors import BadSettingError
from kernel.interfaces import RegistryUnavailable
from kernel.registry import StoredFunction
from plugins.registry_postgres.schema import SchemaTooNew
from plugins.registry_postgres.store import BadDSN, PostgresStore

log = logging.getLogger("noslate.registry_postgres")
NAME = "postgres"


class PostgresRegistry:
    """Deploys go through PostgreSQL; changes made elsewhere arrive by LISTEN/NOTIFY
    (applied within a second) and by a full comparison every ``resync_interval``."""

    name = NAME

    def __init__(self, kernel: Any) -> None:
        cfg = kernel.config.registry
        dsn = cfg.resolved_dsn()
        if not dsn:
            raise BadSettingError(
                '[registry] backend = "postgres" needs [registry] dsn or NOSLATE_REGISTRY_DSN '
                "(e.g. postgresql://noslate@db:5432/noslate)"
            )
        self.kernel = kernel
        self.store = PostgresStore(dsn, cfg.connect_timeout)
        self.resync_interval = cfg.resync_interval
        self._limiter = trio.CapacityLimiter(1)
        self.notified = 0
        self.resyncs = 0

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter, abandon_on_cancel=True)

    async def open(self) -> None:
        await self.migrate()

    async def migrate(self) -> int:
        """Create or migrate the schema; its version (``noslate db migrate`` too)."""
        try:
            return int(await self._call(self.store.migrate))
        except (BadDSN, SchemaTooNew) as exc:
            raise BadSettingError(str(exc)) from None

    async def put(self, stored: StoredFunction) -> None:
        await self._call(self.store.put, stored)

    async def delete(self, name: str) -> bool:
        return bool(await self._call(self.store.delete, name))

    async def get(self, name: str) -> StoredFunction | None:
        return await self._call(self.store.get, name)

    async def versions(self) -> dict[str, str]:
        return dict(await self._call(self.store.versions))

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """LISTEN in a thread; apply each change; resync every ``resync_interval``."""
        send, receive = trio.open_memory_channel[str](10_000)
        token = trio.lowlevel.current_trio_token()
        stop = threading.Event()
        resync_now = trio.Event()

        def deliver(name: str) -> None:
            with contextlib.suppress(trio.WouldBlock, trio.RunFinishedError):  # the resync heals it
                trio.from_thread.run_sync(send.send_nowait, name, trio_token=token)

        def reconnected() -> None:
            trio.from_thread.run_sync(resync_now.set, trio_token=token)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._resync_loop, lambda: resync_now)
            nursery.start_soon(self._apply_loop, receive)
            task_status.started()
            try:
                await trio.to_thread.run_sync(
                    self.store.listen, deliver, stop, reconnected, abandon_on_cancel=True
                )
            finally:
                stop.set()

    async def _apply_loop(self, receive: Any) -> None:
        async for name in receive:
            self.notified += 1
            try:
                await self.kernel.apply_shared(name)
            except RegistryUnavailable as exc:
                log.warning("could not apply the change of %s: %s (the resync will)", name, exc)
            except Exception:
                log.exception("applying the change of %s failed", name)

    async def _resync_loop(self, event: Any) -> None:
        while True:
            with trio.move_on_after(self.resync_interval):
                await event().wait()
            try:
                changed = await self.kernel.sync_shared()
                self.resyncs += 1
                if changed:
                    log.info("resync applied %d change(s) a notification missed", changed)
            except RegistryUnavailable as exc:
                log.debug("resync: %s", exc)
            except Exception:
                log.exception("resync failed")

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self.store.close)
