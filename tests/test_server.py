"""The server's supervision: parts run together and stop together."""

import asyncio
import os
import signal
from pathlib import Path

from kiku.platform import Platform
from kiku.server import Server
from kiku.settings import Settings


class ScriptedPart:
    """A part that runs until stopped, or fails after `fail_after` seconds."""

    def __init__(self, name: str, fail_after: float | None = None) -> None:
        self.name = name
        self.fail_after = fail_after
        self.stopped = asyncio.Event()
        self.stop_calls = 0

    async def run(self) -> None:
        if self.fail_after is not None:
            await asyncio.sleep(self.fail_after)
            raise RuntimeError(f"{self.name} broke")
        await self.stopped.wait()

    def stop(self) -> None:
        self.stop_calls += 1
        self.stopped.set()


def run_server(tmp_path: Path, parts: list[ScriptedPart], after_start: object = None) -> int:
    ready: list[Settings] = []

    async def main() -> int:
        server = Server(
            Settings(data_dir=tmp_path / "data"),
            parts=lambda _p: list(parts),
            on_ready=ready.append,
        )
        task = asyncio.create_task(server.serve())
        while not ready and not task.done():
            await asyncio.sleep(0.01)
        if callable(after_start):
            after_start(server)
        return await task

    return asyncio.run(main())


def test_stop_stops_every_part_and_exits_0(tmp_path: Path) -> None:
    parts = [ScriptedPart("api"), ScriptedPart("router")]
    assert run_server(tmp_path, parts, after_start=lambda server: server.stop()) == 0
    assert [part.stop_calls for part in parts] == [1, 1]


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    parts = [ScriptedPart("api")]
    code = run_server(tmp_path, parts, after_start=lambda _s: os.kill(os.getpid(), signal.SIGTERM))
    assert code == 0
    assert parts[0].stop_calls == 1


def test_a_failing_part_stops_the_others_and_exits_1(tmp_path: Path) -> None:
    healthy, broken = ScriptedPart("api"), ScriptedPart("router", fail_after=0.05)
    assert run_server(tmp_path, [healthy, broken]) == 1
    assert healthy.stop_calls == 1


def test_data_dir_is_private(tmp_path: Path) -> None:
    platform = Platform.build(Settings(data_dir=tmp_path / "fresh"))
    platform.close()
    assert (tmp_path / "fresh").stat().st_mode & 0o777 == 0o700
