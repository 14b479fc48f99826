"""The logplex's moving pieces inside `kiku server`: `LogplexPart` (the router-line intake,
and each app's history written to disk twice a second) and `DynoLogsPart` (the thread that
follows dynos' output files)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from kiku.logs.dynologs import DynoLogFollower
from kiku.logs.intake import RouterLogIntake, bind_intake
from kiku.logs.logplex import Logplex
from kiku.settings import Settings

FLUSH_EVERY = 0.5  # seconds: at most this much history is lost if kiku is killed


class LogplexPart:
    name = "logplex"

    def __init__(self, logplex: Logplex, settings: Settings) -> None:
        self.logplex = logplex
        self.socket = bind_intake(settings.data_dir / "run" / "logplex.sock")
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        intake = RouterLogIntake(self.logplex, self.socket)
        thread = threading.Thread(target=intake.run, name="router-logs", daemon=True)
        thread.start()
        try:
            while not self._stopped.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), FLUSH_EVERY)
                await asyncio.to_thread(self.logplex.flush)
        finally:
            intake.stop()
            await asyncio.to_thread(thread.join)
            await asyncio.to_thread(self.logplex.flush)

    def stop(self) -> None:
        self._stopped.set()


class DynoLogsPart:
    name = "dyno-logs"

    def __init__(self, follower: DynoLogFollower) -> None:
        self.follower = follower

    async def run(self) -> None:
        thread = threading.Thread(target=self.follower.run, name="dyno-logs", daemon=True)
        thread.start()
        await asyncio.to_thread(thread.join)

    def stop(self) -> None:
        self.follower.stop()
