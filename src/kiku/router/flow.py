"""Back-pressure: pause reading one side while the other side cannot keep up.

A transport's reading is paused while any reason holds (the peer's write buffer is full,
a request body is waiting for a backend, a pipelined request is queued).
"""

from __future__ import annotations

import asyncio


class ReadGate:
    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._reasons: set[str] = set()

    def pause(self, reason: str) -> None:
        if not self._reasons and not self.transport.is_closing():
            self.transport.pause_reading()
        self._reasons.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self._reasons:
            return
        self._reasons.discard(reason)
        if not self._reasons and not self.transport.is_closing():
            self.transport.resume_reading()

    def clear(self) -> None:
        if self._reasons:
            self._reasons.clear()
            if not self.transport.is_closing():
                self.transport.resume_reading()

    @property
    def paused(self) -> bool:
        return bool(self._reasons)


PEER = "peer"  # the other side's write buffer is over its high-water mark
BUFFER = "buffer"  # body bytes are waiting for a backend connection
PIPELINE = "pipeline"  # a pipelined request waits behind the current one
