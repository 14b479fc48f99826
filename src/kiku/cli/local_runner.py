"""`kiku local`'s engine: run a Procfile's processes here, as foreman / `heroku local` do.

No terminal and no Click here: the runner reports what happens as events to an `emit`
callback (always called on the thread that called `run()`), and the command turns them
into lines. Foreman's rules:

* each process is `bash -c COMMAND` in its own process group, stdin closed, stderr
  merged into stdout, in the app's directory;
* `PORT` is the base port + 100 × the type's place in the Procfile + the instance
  number − 1 (web.1 5000, web.2 5001, worker.1 5100); no `DYNO` is set;
* when any process exits, or `stop()` is called (Ctrl-C), every group gets SIGTERM,
  and whatever is still running `stop_timeout` seconds later gets SIGKILL;
* `run()` returns the first exiting process's exit code (128 + N for signal N), or
  128 + the signal `stop()` was given.

`.env` files are read by `parse_env`, in foreman's (and heroku local's) format.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

STOP_TIMEOUT = 5.0
PORT_STEP = 100
# How long an exit waits for the process's last output before being reported anyway
# (a background child of the process may hold the pipe open much longer).
OUTPUT_GRACE = 0.5
# After SIGKILL, how long to wait for pipes held open by processes outside the groups.
KILL_GRACE = 2.0
POLL = 0.1


class EnvFileError(ValueError):
    """A `.env` line that is not `KEY=value`; the message names the file and line."""


@dataclass(frozen=True)
class ProcessSpec:
    """One process to run: `web.2` of type `web`, with its `PORT`.

    `index` is its place among the processes run (0, 1, …): a stable colour for it.
    """

    name: str
    type: str
    command: str
    port: int
    index: int


@dataclass(frozen=True)
class Started:
    process: ProcessSpec
    pid: int
    at: datetime


@dataclass(frozen=True)
class Output:
    """One line the process printed (stdout or stderr), without its line ending."""

    process: ProcessSpec
    line: str
    at: datetime


@dataclass(frozen=True)
class Exited:
    """The process ended: `code` when it exited, `signal` when a signal killed it."""

    process: ProcessSpec
    code: int | None
    signal: int | None
    at: datetime

    @property
    def status(self) -> str:
        """`0`, `1`, or the signal's name (`SIGTERM`), as `heroku local` shows it."""
        if self.signal is not None:
            return signal_name(self.signal)
        return str(self.code)


@dataclass(frozen=True)
class Stopping:
    """Every process is being sent `signal` (the first exited, or `stop()` was called)."""

    signal: int
    at: datetime


@dataclass(frozen=True)
class Killing:
    """`process` outlived the grace period and is being sent SIGKILL."""

    process: ProcessSpec
    after: float
    at: datetime


Event = Started | Output | Exited | Stopping | Killing


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def plan(
    procfile_types: Mapping[str, str], base_port: int, concurrency: Mapping[str, int] | None = None
) -> list[ProcessSpec]:
    """The processes to run, in Procfile order: `concurrency[type]` of each (default 1).

    Ports follow the type's place in the whole Procfile, so they do not change with
    which types are run.
    """
    counts = dict(concurrency or {})
    unknown = [name for name in counts if name not in procfile_types]
    if unknown:
        raise ValueError(f"Unknown process type: {', '.join(unknown)}")
    specs: list[ProcessSpec] = []
    for place, (type_, command) in enumerate(procfile_types.items()):
        count = counts.get(type_, 1)
        if count < 0:
            raise ValueError(f"Concurrency of {type_} must not be negative")
        for number in range(1, count + 1):
            port = base_port + PORT_STEP * place + number - 1
            specs.append(ProcessSpec(f"{type_}.{number}", type_, command, port, len(specs)))
    return specs


# -- .env ------------------------------------------------------------------------------

_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def parse_env(text: str, source: str = ".env") -> dict[str, str]:
    """`KEY=value` lines, as foreman reads a `.env` file.

    `export KEY=value` is accepted; blank lines and `# comments` are skipped, and so is a
    ` # comment` after an unquoted value. `'single quotes'` keep the value as written;
    `"double quotes"` understand `\\n`, `\\t`, `\\"` and `\\\\`. Anything else is an
    `EnvFileError` naming `source` and the line.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            raise EnvFileError(f"{source} line {number} is not KEY=value: {line!r}")
        key, rest = match.groups()
        try:
            values[key] = _env_value(rest)
        except ValueError as exc:
            raise EnvFileError(f"{source} line {number}: {exc}: {line!r}") from None
    return values


def _env_value(rest: str) -> str:
    if not rest or rest[0] not in "'\"":
        value = re.split(r"\s#", rest, maxsplit=1)[0]
        return value.strip()
    quote, i = rest[0], 1
    chars: list[str] = []
    while i < len(rest):
        char = rest[i]
        if char == quote:
            trailing = rest[i + 1 :].strip()
            if trailing and not trailing.startswith("#"):
                raise ValueError(f"unexpected text after the closing {quote}")
            return "".join(chars)
        if char == "\\" and quote == '"' and i + 1 < len(rest):
            following = rest[i + 1]
            chars.append(_ESCAPES.get(following, "\\" + following))
            i += 2
            continue
        chars.append(char)
        i += 1
    raise ValueError(f"no closing {quote}")


# -- the runner ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    child: _Child
    text: str
    at: datetime


@dataclass(frozen=True)
class _ReaderDone:
    child: _Child


@dataclass(frozen=True)
class _Exit:
    child: _Child
    returncode: int
    at: datetime


@dataclass(frozen=True)
class _StopRequest:
    signal: int


_Message = _Line | _ReaderDone | _Exit | _StopRequest


class _Child:
    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen[bytes]) -> None:
        self.spec = spec
        self.popen = popen
        self.reader: threading.Thread | None = None

    @property
    def pgid(self) -> int:
        return self.popen.pid  # started with process_group=0: it leads its own group

    def signal_group(self, number: int) -> bool:
        """Send `number` to the whole group; False when the group is gone."""
        try:
            os.killpg(self.pgid, number)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def group_alive(self) -> bool:
        return self.signal_group(0)


class LocalRunner:
    """Runs a Procfile's processes until one exits or `stop()` is called.

    Example::

        runner = LocalRunner({"web": "python -m http.server $PORT"}, dict(os.environ),
                             5000, emit=print)
        code = runner.run()          # blocks; runner.stop() from elsewhere ends it
    """

    def __init__(
        self,
        procfile_types: Mapping[str, str],
        env: Mapping[str, str],
        base_port: int = 5000,
        concurrency: Mapping[str, int] | None = None,
        *,
        clock: Callable[[], datetime] = datetime.now,
        emit: Callable[[Event], object] = lambda event: None,
        cwd: Path | None = None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.processes = plan(procfile_types, base_port, concurrency)
        self.env = dict(env)
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self._clock = clock
        self._emit = emit
        # SimpleQueue: put() is safe from a signal handler and from any thread.
        self._queue: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._children: list[_Child] = []
        self.pids: list[int] = []

    def stop(self, signum: int = signal.SIGINT) -> None:
        """End the run (as Ctrl-C does); a second call skips the grace period.

        Safe from another thread and from a signal handler. `run()` then returns
        128 + `signum` unless a process had already exited.
        """
        self._queue.put(_StopRequest(signum))

    def run(self) -> int:
        """Start every process, relay their output, stop them all; the exit code."""
        if not self.processes:
            return 0
        self._start_all()
        running = set(self._children)
        reading = set(self._children)
        result: int | None = None
        deadline: float | None = None  # SIGKILL time, once stopping
        give_up: float | None = None  # after SIGKILL: stop waiting for stray pipes
        while running or reading or (give_up is None and self._groups_alive()):
            now = time.monotonic()
            if give_up is not None and now >= give_up:
                break
            if deadline is not None and now >= deadline:
                self._kill(running)
                deadline, give_up = None, now + KILL_GRACE
            try:
                message = self._queue.get(timeout=POLL)
            except queue.Empty:
                continue
            if isinstance(message, _Line):
                self._emit(Output(message.child.spec, message.text, message.at))
            elif isinstance(message, _ReaderDone):
                reading.discard(message.child)
            elif isinstance(message, _Exit):
                running.discard(message.child)
                code = message.returncode
                self._emit(
                    Exited(
                        message.child.spec,
                        code if code >= 0 else None,
                        -code if code < 0 else None,
                        message.at,
                    )
                )
                if result is None:
                    result = code if code >= 0 else 128 - code
                    deadline = self._terminate()
            elif result is None:  # the first stop request
                result = 128 + message.signal
                deadline = self._terminate()
            elif deadline is not None:  # asked again while stopping: no more waiting
                deadline = time.monotonic()
        return result if result is not None else 0

    # -- internals ---------------------------------------------------------------------

    def _start_all(self) -> None:
        try:
            for spec in self.processes:
                self._start(spec)
        except BaseException:
            for child in self._children:
                child.signal_group(signal.SIGKILL)
                child.popen.wait()
            raise

    def _start(self, spec: ProcessSpec) -> None:
        env = {**self.env, "PORT": str(spec.port)}
        popen = subprocess.Popen(
            ["bash", "-c", spec.command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            process_group=0,
        )
        child = _Child(spec, popen)
        self._children.append(child)
        self.pids.append(popen.pid)
        self._emit(Started(spec, popen.pid, self._clock()))
        child.reader = threading.Thread(
            target=self._read, args=(child,), name=f"local-{spec.name}-out", daemon=True
        )
        child.reader.start()
        threading.Thread(
            target=self._wait, args=(child,), name=f"local-{spec.name}-wait", daemon=True
        ).start()

    def _read(self, child: _Child) -> None:
        stream = child.popen.stdout
        assert stream is not None
        with stream:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._queue.put(_Line(child, text, self._clock()))
        self._queue.put(_ReaderDone(child))

    def _wait(self, child: _Child) -> None:
        returncode = child.popen.wait()
        if child.reader is not None:
            child.reader.join(OUTPUT_GRACE)  # let its last lines come first
        self._queue.put(_Exit(child, returncode, self._clock()))

    def _terminate(self) -> float:
        """SIGTERM to every group; returns when SIGKILL is due."""
        self._emit(Stopping(signal.SIGTERM, self._clock()))
        for child in self._children:
            child.signal_group(signal.SIGTERM)
        return time.monotonic() + self.stop_timeout

    def _kill(self, running: set[_Child]) -> None:
        for child in self._children:
            if child in running:
                self._emit(Killing(child.spec, self.stop_timeout, self._clock()))
            child.signal_group(signal.SIGKILL)

    def _groups_alive(self) -> bool:
        return any(child.group_alive() for child in self._children)
