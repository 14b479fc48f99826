"""`FakeBackend`: records calls and lets a test say "this dyno exits with 137 now"."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from kiku.dynos.backend import Attachment, DynoHandle, DynoSpec, DynoStatus


@dataclass
class FakeDyno:
    spec: DynoSpec
    handle: DynoHandle
    status: DynoStatus = field(default_factory=lambda: DynoStatus(running=True))
    removed: bool = False


class FakeBackend:
    def __init__(self) -> None:
        self.dynos: dict[str, FakeDyno] = {}
        self.calls: list[tuple[str, str]] = []
        self._pids = itertools.count(1000)
        # What attached one-off dynos (the release phase) print, and how they exit.
        self.one_off_output = b""
        self.one_off_exit = 0
        self._attachments: dict[str, Attachment] = {}

    def start(self, spec: DynoSpec) -> DynoHandle:
        handle = DynoHandle(
            spec.dyno_id,
            spec.name,
            spec.app_id,
            "10.0.0.1" if spec.port else None,
            spec.port,
            next(self._pids),
        )
        self.dynos[spec.dyno_id] = FakeDyno(spec, handle)
        self.calls.append(("start", spec.name))
        if spec.attach:
            stdin_read, stdin_write = os.pipe()
            os.close(stdin_read)
            out_read, out_write = os.pipe()
            os.write(out_write, self.one_off_output)
            os.close(out_write)
            self._attachments[spec.dyno_id] = Attachment(stdin_write, out_read)
            self.dynos[spec.dyno_id].status = DynoStatus(False, exit_code=self.one_off_exit)
        return handle

    def attach(self, handle: DynoHandle) -> Attachment | None:
        return self._attachments.pop(handle.dyno_id, None)

    def stop(self, handle: DynoHandle, grace: float) -> None:
        self.calls.append(("stop", handle.name))
        dyno = self.dynos[handle.dyno_id]
        if dyno.status.running:
            dyno.status = DynoStatus(running=False, exit_code=143)

    def inspect(self, handle: DynoHandle) -> DynoStatus:
        return self.dynos[handle.dyno_id].status

    def adopt(self) -> list[DynoHandle]:
        return [d.handle for d in self.dynos.values() if not d.removed]

    def remove(self, handle: DynoHandle) -> None:
        self.calls.append(("remove", handle.name))
        self.dynos[handle.dyno_id].removed = True

    def close(self) -> None:
        self.calls.append(("close", ""))

    # -- for tests -------------------------------------------------------------------------

    def exit(self, name: str, code: int, *, oom: bool = False) -> None:
        """The live dyno called `name` exits now with `code`."""
        for dyno in self.dynos.values():
            if dyno.spec.name == name and dyno.status.running and not dyno.removed:
                dyno.status = DynoStatus(running=False, exit_code=code, oom_killed=oom)
                return
        raise KeyError(name)

    def set_memory(self, name: str, used: int, limit: int) -> None:
        for dyno in self.dynos.values():
            if dyno.spec.name == name and dyno.status.running:
                dyno.status = DynoStatus(True, memory_bytes=used, memory_limit_bytes=limit)

    def live(self) -> dict[str, FakeDyno]:
        return {d.spec.name: d for d in self.dynos.values() if d.status.running and not d.removed}
