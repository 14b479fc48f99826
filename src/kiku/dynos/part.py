"""`DynoManagerPart`: runs the dyno manager's reconcile passes inside `kiku server`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kiku.dynos.manager import DynoManager

log = logging.getLogger("kiku.dynos")


class DynoManagerPart:
    """A server part. Stopping it stops the passes, never the dynos: they outlive the
    control plane and the next start adopts them."""

    name = "dyno-manager"

    def __init__(self, manager: DynoManager, interval: float = 0.25) -> None:
        self.manager = manager
        self.interval = interval
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        await asyncio.to_thread(self.manager.adopt)
        failures = 0
        while not self._stopped.is_set():
            try:
                await asyncio.to_thread(self.manager.reconcile)
                failures = 0
            except Exception:
                # One bad pass must not take the platform down; the next pass retries.
                failures += 1
                log.exception("reconcile pass failed (%d in a row)", failures)
            delay = self.interval * min(2**failures, 40)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=delay)
        # Replaced dynos being stopped in the background are stopped before kiku exits.
        await asyncio.to_thread(self.manager.wait_for_stops)
        self.manager.backend.close()

    def stop(self) -> None:
        self._stopped.set()
