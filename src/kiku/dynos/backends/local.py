"""`LocalBackend`: dynos as sandboxed processes on this host.

Per dyno: a cgroup v1 group per controller (memory, pids, cpu), a network namespace with a
veth to the host (`network.py`), a private copy of the slug at `/app`, and bubblewrap on the
read-only stack (`sandbox.py`), all started under a detached shim (`shim.py`) so dynos keep
running when kiku stops. Everything about a dyno lives in `<state_dir>/<dyno_id>/`:

    handle.json    the DynoHandle, the shim's pid and start time, the network slot
    shim.json      what the shim runs
    sandbox.json   bwrap's pid and start time (written by the shim)
    exit           {"code", "oom_killed"} once the sandbox ended (written by the shim)
    log            stdout and stderr of a dyno that is not attached
    attach.sock    attached one-offs: connect once, receive the dyno's stdio fds
    app/           the private /app; hosts, resolv.conf

Attaching: the shim listens on `attach.sock` and starts the command only once a client is
there (Heroku's "Awaiting client"). `attach()` connects and receives, by SCM_RIGHTS, either
a pty master (`tty=True`; stdin_fd and stdout_fd are two fds of it) or the write end of the
dyno's stdin pipe and the read end of its stdout+stderr pipe. The exit code then comes from
`inspect()`, as for any dyno.

Example::

    backend = LocalBackend(LocalSettings(data_dir=Path("/srv/kiku")))
    handle = backend.start(spec)
    backend.stop(handle, grace=30.0)
    backend.remove(handle)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiku.dynos import shim
from kiku.dynos.backend import Attachment, DynoHandle, DynoSpec, DynoStatus
from kiku.dynos.cgroups import CGROUP_ROOT, DynoCgroup, available_controllers
from kiku.dynos.network import DEFAULT_POOL, DynoNetwork, NetworkPool
from kiku.dynos.sandbox import STAGE, Sandbox, runtime_prefix
from kiku.dynos.stack import DYNO_UID, STACK_NAME, StackRoot
from kiku.errors import Unavailable
from kiku.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
ATTACH_WAIT = 30.0
# After SIGKILL the kernel still has to tear the processes down (slow under load).
KILL_WAIT = 20.0
TOOLS = ("bwrap", "nsenter", "setpriv", "ip", "tar", "cp")


@dataclass(frozen=True)
class LocalSettings:
    """Where the local backend keeps things. Only `data_dir` is required.

    `stack_dir` may point at a stack shared by several data dirs (tests and CI build
    `/var/lib/kiku/stacks/kiku-24` once with scripts/build-stack.sh).
    """

    data_dir: Path
    stack_dir: Path | None = None  # default <data_dir>/stacks/kiku-24
    state_dir: Path | None = None  # default <data_dir>/dynos
    address_pool: str = DEFAULT_POOL
    # Host-wide, like the netns and veths: every kiku on this host shares the address pool.
    address_dir: Path = Path("/run/kiku/dyno-addresses")
    cgroup_root: Path = CGROUP_ROOT
    dyno_uid: int = DYNO_UID
    attach_timeout: float = 60.0
    # No resolver listens there: lookups fail at once instead of stalling (dynos have no
    # route out unless an operator gives them one).
    nameserver: str = "127.0.0.1"
    # /app as an overlay of the cached slug (False: a full copy per dyno).
    overlay: bool = True

    @property
    def stack(self) -> Path:
        return self.stack_dir or self.data_dir / "stacks" / STACK_NAME

    @property
    def dynos(self) -> Path:
        return self.state_dir or self.data_dir / "dynos"


class LocalBackend:
    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        """The backend for a kiku's data dir and stack (server, attach endpoints, tests)."""
        return cls(LocalSettings(settings.data_dir, stack_dir=settings.stack_dir))

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.stack = StackRoot(settings.stack)
        missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        if missing:
            raise Unavailable(f"dynos need {', '.join(missing)} (Debian packages)", delay=60)
        self._tools = {tool: str(shutil.which(tool)) for tool in TOOLS}
        self.controllers = available_controllers(settings.cgroup_root)
        for controller in ("memory", "pids", "cpu"):
            if controller not in self.controllers:
                log.warning(
                    "cgroup v1 controller %r unavailable: %s limits off",
                    controller,
                    {"memory": "memory", "pids": "process", "cpu": "cpu share"}[controller],
                )
        STAGE.mkdir(mode=0o755, exist_ok=True)
        self.root = settings.dynos
        self.root.mkdir(parents=True, exist_ok=True)
        # Called before a dyno's directory goes: the logplex reads its last output lines.
        self.before_remove: Callable[[DynoHandle], None] | None = None
        self.root.chmod(0o700)
        self.slugs = settings.data_dir / "cache" / "dyno-slugs"
        self.pool = NetworkPool(settings.address_dir, settings.address_pool)
        self.pool.blackhole()
        if not self.pool.firewall():
            log.warning(
                "no nftables: dynos can connect to host services listening on 0.0.0.0 "
                "(install nftables; loopback-only services stay out of reach)"
            )
        self._slug_lock = threading.Lock()
        self._overlay = settings.overlay and _has_filesystem("overlay")
        if settings.overlay and not self._overlay:
            log.warning("no overlayfs: each dyno copies its slug (slower starts)")

    # -- Backend ---------------------------------------------------------------------------

    def start(self, spec: DynoSpec) -> DynoHandle:
        if not self.stack.ready:
            self.stack.ensure()
        state = self.root / spec.dyno_id
        state.mkdir(mode=0o700)
        network: DynoNetwork | None = None
        cgroup = DynoCgroup(_cgroup_name(spec.dyno_id), self.controllers, self.settings.cgroup_root)
        try:
            app, layers = self._unpack(spec.slug, state)
            network = self.pool.allocate(spec.dyno_id)
            network.up()
            cgroup.create(spec.memory_mb, spec.pids_max, spec.cpu_shares)
            self._write_etc(state, spec, network)
            sandbox = Sandbox(
                name=spec.name,
                netns_path=network.netns_path,
                uid=self.settings.dyno_uid,
                stack=self.stack.path,
                app_dir=app,
                hosts_file=state / "hosts",
                resolv_file=state / "resolv.conf",
                command=spec.command,
                runtime_prefix=runtime_prefix(app, [self.settings.data_dir, self.root]),
                app_layers=layers,
                new_session=not spec.tty,
            )
            pid, start = self._spawn_shim(state, spec, sandbox, cgroup)
        except BaseException:
            self._cleanup(state, network, cgroup)
            raise
        handle = DynoHandle(
            dyno_id=spec.dyno_id,
            name=spec.name,
            app_id=spec.app_id,
            address=network.dyno_ip,
            port=spec.port,
            pid=pid,
            started_at=time.time(),
        )
        record = {"handle": asdict(handle), "shim_start": start, "slot": network.slot}
        _write_json(state / "handle.json", record)
        return handle

    def attach(self, handle: DynoHandle) -> Attachment | None:
        """The dyno's stdio, for the one client that attaches; None for any other (the
        shim accepts once), or when the dyno ended or never opened its socket."""
        state = self.root / handle.dyno_id
        path = state / "attach.sock"
        # The shim opens attach.sock once it runs; on a loaded host that can take seconds.
        # Once the sandbox runs, somebody else has attached.
        deadline = time.monotonic() + ATTACH_WAIT
        while not path.exists():
            if (state / "sandbox.json").exists() or time.monotonic() > deadline:
                return None
            if not self.inspect(handle).running:
                return None
            time.sleep(0.005)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(str(path))
                kind, fds, _, _ = socket.recv_fds(conn, 16, 2)
        except OSError:  # the socket went: another client won the one accept
            return None
        if not fds:  # queued behind the winner, then dropped when the shim closed
            return None
        if kind == b"tty":
            return Attachment(stdin_fd=fds[0], stdout_fd=os.dup(fds[0]), extra={"tty": 1})
        return Attachment(stdin_fd=fds[0], stdout_fd=fds[1])

    def stop(self, handle: DynoHandle, grace: float) -> None:
        cgroup = self._cgroup(handle)
        state = self.root / handle.dyno_id
        # Heroku signals every process of the dyno. bwrap itself (outside, and PID 1 inside)
        # is spared: SIGTERM to it would kill the app with no grace.
        for pid in self._pids(cgroup, state):
            if _pid_in_dyno(pid) not in (None, 1):
                _kill(pid, signal.SIGTERM)
        waiting = self._waiting_shim(state)
        if waiting is not None:  # it gives up waiting and records 143
            _kill(waiting, signal.SIGTERM)
        if self._wait_gone(handle, grace):
            return
        for pid in self._pids(cgroup, state):
            _kill(pid, signal.SIGKILL)
        waiting = self._waiting_shim(state)
        if waiting is not None:
            _kill(waiting, signal.SIGKILL)
            if self._wait_gone(handle, KILL_WAIT):
                _write_json(state / "exit", {"code": 137, "reason": "killed"})
                return
        if not self._wait_gone(handle, KILL_WAIT):
            raise Unavailable(f"dyno {handle.name} did not end after SIGKILL")

    def exec_command(self, handle: DynoHandle, command: str) -> tuple[list[str], dict[str, str]]:
        """argv and env to run `command` inside a running dyno (`ps:exec`, `ps:copy`): its
        cgroups (so what it runs counts against the dyno's memory, pids and cpu), all of the
        app process's namespaces, its user, /app, and its environment."""
        sandbox = _read_json(self.root / handle.dyno_id / "sandbox.json")
        if not sandbox or not self.inspect(handle).running:
            raise Unavailable(f"dyno {handle.name} is not running")
        # The app (PID 2 and up inside), not bwrap's init: that one exists while bwrap is
        # still setting up the sandbox's mounts.
        inside = [pid for pid in _descendants(int(sandbox["pid"])) if (_pid_in_dyno(pid) or 1) > 1]
        if not inside:
            raise Unavailable(f"dyno {handle.name} has no process to join yet")
        target = inside[0]
        raw = Path(f"/proc/{target}/environ").read_bytes().split(b"\0")
        env = dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)
        argv = [
            *self._join_cgroups(handle),
            shutil.which("nsenter") or "nsenter",
            "-t",
            str(target),
            # Every namespace but the user one (its root is not mapped); then the dyno's uid.
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--cgroup",
            f"--setuid={self.settings.dyno_uid}",
            f"--setgid={self.settings.dyno_uid}",
            "bash",
            "-c",
            f"cd /app && {command}",
        ]
        return argv, env

    def _join_cgroups(self, handle: DynoHandle) -> list[str]:
        """A host shell that moves itself into the dyno's cgroups, then execs the rest of
        the argv: everything it starts is limited and counted as the dyno's own. It runs
        with the dyno's environment, so nothing in it expands a config var ("$$" only)."""
        joins = [
            f'echo "$$" > {shlex.quote(procs)}' for procs in self._cgroup(handle).procs_files()
        ]
        if not joins:
            return []
        failed = '{ echo "kiku: could not join the dyno\'s cgroups" >&2; exit 126; }'
        script = f'{" && ".join(joins)} || {failed}; exec "$@"'
        return ["/bin/sh", "-c", script, "kiku-exec"]

    def inspect(self, handle: DynoHandle) -> DynoStatus:
        state = self.root / handle.dyno_id
        cgroup = self._cgroup(handle)
        usage, limit = cgroup.memory_usage(), cgroup.memory_limit()
        ended = _read_json(state / "exit")
        if ended is not None:
            return DynoStatus(
                running=False,
                exit_code=int(ended["code"]),
                oom_killed=bool(ended.get("oom_killed")) or cgroup.oom_kills() > 0,
                memory_bytes=usage,
                memory_limit_bytes=limit,
            )
        record = _read_json(state / "handle.json") or {}
        sandbox = _read_json(state / "sandbox.json") or {}
        # The recorded pid, not the caller's: a handle rebuilt from the store (rendezvous,
        # the attach endpoints) has none, and an attached one-off has only its shim until
        # a client comes.
        shim_pid = record.get("handle", {}).get("pid", handle.pid)
        running = _alive(shim_pid, record.get("shim_start")) or _alive(
            sandbox.get("pid"), sandbox.get("start")
        )
        if not running:  # the shim vanished without a word (killed from outside)
            return DynoStatus(running=False, exit_code=None, oom_killed=cgroup.oom_kills() > 0)
        return DynoStatus(
            running=True,
            oom_killed=cgroup.oom_kills() > 0,
            memory_bytes=usage,
            memory_limit_bytes=limit,
        )

    def adopt(self) -> list[DynoHandle]:
        """Every dyno with a state dir: running ones and exited ones not yet removed."""
        handles = []
        for record_file in sorted(self.root.glob("*/handle.json")):
            record = _read_json(record_file)
            if record is not None:
                handles.append(DynoHandle(**record["handle"]))
        return handles

    def remove(self, handle: DynoHandle) -> None:
        if self.inspect(handle).running:
            self.stop(handle, grace=0)
        if self.before_remove is not None:
            self.before_remove(handle)
        state = self.root / handle.dyno_id
        record = _read_json(state / "handle.json")
        network = None
        if record is not None:
            network = self.pool.network(handle.dyno_id, int(record["slot"]))
        self._cleanup(state, network, self._cgroup(handle))

    def close(self) -> None:
        """Nothing to release: the backend holds no process, pipe or fd of any dyno."""

    # -- helpers ---------------------------------------------------------------------------

    def log_path(self, handle: DynoHandle) -> Path:
        """Where a (not attached) dyno's stdout and stderr go, for the log stream to follow."""
        return self.root / handle.dyno_id / "log"

    def cgroup(self, dyno_id: str) -> DynoCgroup:
        """A dyno's cgroups, which runtime metrics read (logs/runtime_metrics.py)."""
        return DynoCgroup(_cgroup_name(dyno_id), self.controllers, self.settings.cgroup_root)

    def _cgroup(self, handle: DynoHandle) -> DynoCgroup:
        name = _cgroup_name(handle.dyno_id)
        return DynoCgroup(name, self.controllers, self.settings.cgroup_root)

    def _unpack(self, slug: Path, state: Path) -> tuple[Path, tuple[Path, Path] | None]:
        """The dyno's /app: the slug's one cached extraction under a private overlay layer
        (instant; writes land in `upper`), or a private copy where overlayfs is missing."""
        cached = self._extracted(slug)
        uid = self.settings.dyno_uid
        if self._overlay:
            upper, work = state / "upper", state / "work"
            upper.mkdir(mode=0o755)
            work.mkdir(mode=0o700)
            os.chown(upper, uid, uid)  # the overlay's root takes the upper dir's owner
            return cached, (upper, work)
        app = state / "app"
        # cp -a keeps the dyno user's ownership; ~1 s for a 240 MB, 6500-file slug.
        _run([self._tools["cp"], "-a", "--reflink=auto", str(cached), str(app)])
        return app, None

    def _extracted(self, slug: Path) -> Path:
        """One extraction per slug, owned by the dyno user, shared read-only by its dynos."""
        info = slug.stat()
        # Slugs are immutable blobs: a new slug at the same path is a new inode and mtime.
        key = f"{info.st_ino}-{info.st_size}-{info.st_mtime_ns}"
        cached = self.slugs / key
        with self._slug_lock:
            if not cached.is_dir():
                self.slugs.mkdir(mode=0o700, parents=True, exist_ok=True)
                work = self.slugs / f"{key}.{os.getpid()}.partial"
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                _run(["tar", "-xzf", str(slug), "-C", str(work)])
                uid = str(self.settings.dyno_uid)
                _run(["chown", "-R", f"{uid}:{uid}", str(work)])
                work.chmod(0o755)
                os.replace(work, cached)
        return cached

    def _write_etc(self, state: Path, spec: DynoSpec, network: DynoNetwork) -> None:
        (state / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{network.dyno_ip}\t{spec.name}\n"
        )
        (state / "resolv.conf").write_text(
            f"nameserver {self.settings.nameserver}\noptions timeout:1 attempts:1\n"
        )

    def _spawn_shim(
        self, state: Path, spec: DynoSpec, sandbox: Sandbox, cgroup: DynoCgroup
    ) -> tuple[int, int]:
        env = {"PATH": DEFAULT_PATH, **spec.env, "HOME": "/app", "DYNO": spec.name}
        if spec.port is not None:
            env["PORT"] = str(spec.port)
        argv = sandbox.argv(self._tools)
        config: dict[str, Any] = {
            "argv": argv,
            "env": env,
            "fds": sandbox.open_fds,
            "stage_dir": str(STAGE),
            "stage_binds": sandbox.stage_binds,
            "cgroup_procs": cgroup.procs_files(),
            "oom_control": str(cgroup.paths["memory"] / "memory.oom_control")
            if "memory" in cgroup.paths
            else None,
            "state_dir": str(state),
            "log": str(state / "log"),
            "attach": ("tty" if spec.tty else "pipe") if spec.attach else None,
            "attach_timeout": self.settings.attach_timeout,
        }
        _write_json(state / "shim.json", config)
        out = subprocess.run(
            [sys.executable, "-I", "-S", shim.__file__, str(state / "shim.json")],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
            start_new_session=True,
        )
        pid, start = out.stdout.split()
        return int(pid), int(start)

    def _pids(self, cgroup: DynoCgroup, state: Path) -> list[int]:
        pids = cgroup.pids()
        if pids is not None:
            return pids
        sandbox = _read_json(state / "sandbox.json")
        return _descendants(int(sandbox["pid"])) if sandbox else []

    def _waiting_shim(self, state: Path) -> int | None:
        """The shim of an attached one-off still waiting for its client: no sandbox yet,
        nothing in the dyno's cgroups, so it is the one process to stop."""
        if (state / "sandbox.json").exists() or (state / "exit").exists():
            return None
        record = _read_json(state / "handle.json") or {}
        pid = record.get("handle", {}).get("pid")
        return pid if _alive(pid, record.get("shim_start")) else None

    def _wait_gone(self, handle: DynoHandle, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.inspect(handle).running:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _cleanup(self, state: Path, network: DynoNetwork | None, cgroup: DynoCgroup) -> None:
        if network is not None:
            network.down()
            self.pool.release(network)
        with contextlib.suppress(OSError):
            cgroup.remove()
        shutil.rmtree(state, ignore_errors=True)


def _has_filesystem(name: str) -> bool:
    try:
        lines = Path("/proc/filesystems").read_text().splitlines()
        return any(line.split()[-1] == name for line in lines if line.strip())
    except OSError:
        return False


def _cgroup_name(dyno_id: str) -> str:
    return f"dyno-{dyno_id}"


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise Unavailable(f"{argv[0]} failed: {result.stderr.strip()}")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: object, start: object) -> bool:
    """The process runs and is the one we started (same start time: pids get reused)."""
    if not isinstance(pid, int):
        return False
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == start


def _pid_in_dyno(pid: int) -> int | None:
    """The pid as the dyno sees it (1 is bwrap's init), None for a process outside it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                levels = line.split()[1:]
                return int(levels[1]) if len(levels) > 1 else None
    except (OSError, ValueError):
        pass
    return None


def _descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            todo += [int(child) for child in children]
    return found


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
