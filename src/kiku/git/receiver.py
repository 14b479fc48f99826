"""`PushReceiver`: the platform's side of the pre-receive hook, a server on a local socket.

A push's hook connects, sends which refs moved, and gets the build's output line by line,
then `EXIT_MARK` and a status. Only `main` and `master` deploy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from kiku.build.builder import Builder, PushedCommit
from kiku.git.hook import EXIT_MARK

log = logging.getLogger("kiku.git")
DEPLOY_BRANCHES = ("refs/heads/main", "refs/heads/master")
ZERO = "0" * 40


class PushReceiver:
    """A server `Part`: serves build requests from hooks until stopped."""

    name = "git-receiver"

    def __init__(self, builder: Builder, socket_path: Path) -> None:
        self.builder = builder
        self.socket_path = socket_path
        self._server: asyncio.AbstractServer | None = None
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        self.socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        async with self._server:
            await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def emit(line: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, line)

        try:
            request = json.loads(await reader.readline())
            job = asyncio.create_task(asyncio.to_thread(self._handle, request, emit))
            job.add_done_callback(lambda _t: loop.call_soon_threadsafe(queue.put_nowait, None))
            while (line := await queue.get()) is not None:
                writer.write(line.encode() + b"\n")
                await writer.drain()
            code = 0 if job.result() else 1
        except Exception:
            log.exception("build request failed")
            writer.write(b" !     Build failed: an internal error occurred.\n")
            code = 1
        writer.write(f"{EXIT_MARK}{code}\n".encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _handle(self, request: dict[str, Any], emit: Any) -> bool:
        """Runs in a worker thread: check the refs, then build the deploy branch's commit."""
        refs = [tuple(ref) for ref in request["refs"] if len(ref) == 3]
        for _old, new, ref in refs:
            if ref not in DEPLOY_BRANCHES:
                branch = ref.removeprefix("refs/heads/")
                emit(f" !     Push rejected: kiku deploys only main and master, not {branch}.")
                emit(f" !     To deploy it: git push kiku {branch}:main")
                return False
            if new == ZERO:
                emit(f" !     Push rejected: deleting {ref} is not allowed.")
                return False
        if not refs:
            return True
        previous, commit, ref = refs[-1]
        emit("Building source:")
        emit("")
        push = PushedCommit(
            app_id=request["app_id"],
            user_id=request.get("user_id"),
            commit=commit,
            repo=Path(request["repo"]),
            ref=ref,
            previous=None if previous == ZERO else previous,
            git_env={k: v for k, v in request["git_env"].items() if k != "GIT_DIR"},
        )
        outcome = self.builder.build(push, emit)
        if outcome.ok:
            emit("Verifying deploy... done.")
            if outcome.release_pending and outcome.release_id:
                emit("Running release command...")
                emit("")
                passed = self.builder.follow_release_phase(outcome.release_id, emit)
                emit("")
                emit(f"Waiting for release.... {'done' if passed else 'failed'}.")
                if not passed:
                    emit(
                        f" !     Release v{outcome.release_version} failed: the release command "
                        "exited non-zero. The previous release keeps serving."
                    )
        else:
            emit("Verifying deploy...")
            emit("")
            emit("!\tPush rejected.")
        return outcome.ok
