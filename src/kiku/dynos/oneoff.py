"""One-off dynos that run to completion, such as the release phase's `release.NNNN`."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kiku.dynos.backend import Backend, DynoSpec
from kiku.dynos.sizes import size_named

# Heroku: a release command may run for an hour (HEROKU_BEHAVIOUR §6.3).
RELEASE_TIMEOUT = 3600.0


def one_off_name(kind: str) -> str:
    return f"{kind}.{random.randint(1000, 9999)}"


def run_to_completion(
    backend: Backend,
    *,
    app_id: str,
    app_name: str,
    kind: str,
    command: str,
    slug: Path,
    release_version: int,
    env: dict[str, str],
    emit: Callable[[str], None],
    size: str = "standard-1x",
    timeout: float = RELEASE_TIMEOUT,
    name: str | None = None,
) -> int:
    """Start a one-off dyno, relay its output line by line, and answer its exit status."""
    name = name or one_off_name(kind)
    dimensions = size_named(size)
    spec = DynoSpec(
        dyno_id=str(uuid.uuid4()),
        app_id=app_id,
        app_name=app_name,
        name=name,
        release_version=release_version,
        slug=slug,
        command=command,
        env={**env, "DYNO": name},
        memory_mb=dimensions.memory_mb * 2,
        pids_max=dimensions.pids,
        cpu_shares=dimensions.cpu_shares,
        attach=True,
    )
    handle = backend.start(spec)
    try:
        attachment = backend.attach(handle)
        deadline = time.monotonic() + timeout
        if attachment is not None:
            os.close(attachment.stdin_fd)
            with os.fdopen(attachment.stdout_fd, "rb", buffering=0) as stream:
                pending = b""
                while chunk := stream.read(4096):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        emit(line.decode(errors="replace").rstrip("\r"))
                if pending:
                    emit(pending.decode(errors="replace"))
        while True:
            status = backend.inspect(handle)
            if not status.running:
                return status.exit_code if status.exit_code is not None else 1
            if time.monotonic() > deadline:
                backend.stop(handle, 0)
                emit(f" !     {name} timed out after {timeout:.0f} seconds and was stopped.")
                return 137
            time.sleep(0.05)
    finally:
        backend.remove(handle)
