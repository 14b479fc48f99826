"""Where buildpacks run: `BuildSandbox` (bubblewrap on the stack, as for dynos) or, on a host
that cannot sandbox, `HostRunner` (said loudly, never silently).

A sandboxed phase (detect, compile, release, sourcing an `export`) runs as::

    (before exec, root)        a private mount ns, the build's dirs bound under a tmpfs at
                               the stage dir (as the shim does for dynos: the build user
                               could not reach them under a 0700 data dir)
    setpriv --reuid U          the dyno user: bwrap's user namespace maps U, never host root
        bwrap --unshare-user/pid/ipc/uts/cgroup --die-with-parent --new-session
              --ro-bind <stack> /                      the stack, read-only
              --bind <build> /app                      the slug to be (writable)
              --bind <cache> /tmp/cache, --ro-bind <env> /tmp/env,
              --bind <buildpacks> /tmp/buildpacks      the buildpacks' private copies
              toolchains, read-only: /root/.pyenv/versions, /opt/python*, and uv, node and
              npm under a tmpfs /usr/local
              the host's network settings, read-only: resolv.conf, hosts, the CA bundle
              (where a host's proxy CA lives), apt's configuration and package lists
          <the buildpack's bin/compile /app /tmp/cache /tmp/env>

No network namespace: builds fetch from package registries through the host's own network
(HOST_NOTES). But an nftables rule (`close_host_services`) rejects the build user's
connections to any address of the host itself (DNS excepted), so the API, add-on databases
and other services on loopback stay out of reach. Nothing of the data dir is in reach but
the three dirs a build is given, and the memory cgroup and timeout of `limits.py` hold the
whole sandbox.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kiku.dynos.sandbox import STAGE
from kiku.dynos.shim import CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_REC
from kiku.dynos.stack import DYNO_UID, StackRoot

log = logging.getLogger(__name__)

# Where the buildpacks see the build's directories.
INSIDE_BUILD = "/app"
INSIDE_CACHE = "/tmp/cache"
INSIDE_ENV = "/tmp/env"
INSIDE_PACKS = "/tmp/buildpacks"
INSIDE_UV = "/usr/local/bin/uv"
TOOLS = ("bwrap", "setpriv")
# The host's network and package settings a build needs to reach the registries it reaches.
HOST_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/ssl/certs/ca-certificates.crt",
)
HOST_DIRS = ("/etc/apt", "/var/lib/apt/lists")
PYENV_VERSIONS = Path("/root/.pyenv/versions")


@dataclass(frozen=True)
class Command:
    """What runs one phase: `argv`, and what the child does before exec (as root)."""

    argv: list[str]
    preexec: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class BuildDirs:
    """One build's directories on the host."""

    build: Path
    cache: Path
    env: Path
    buildpacks: Path


class BuildRunner(Protocol):
    """How the compiler runs a buildpack's scripts: where they see the build's dirs, what
    they may write, and the command line that runs them."""

    sandboxed: bool

    def path(self, dirs: BuildDirs, path: Path) -> str:
        """`path` (under one of `dirs`) as the buildpack sees it."""

    def own(self, path: Path) -> None:
        """Let the buildpacks write into `path` (a build dir, the cache, a buildpack)."""

    def command(self, dirs: BuildDirs, argv: list[str]) -> Command:
        """What runs `argv` (already in the buildpack's paths)."""

    def uv(self, uv: Path) -> str:
        """Where the buildpacks find the uv binary kiku hands them."""


class HostRunner:
    """Buildpacks on the host, as kiku's own user: only where no sandbox can be had."""

    sandboxed = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def path(self, dirs: BuildDirs, path: Path) -> str:
        return str(path)

    def own(self, path: Path) -> None:
        pass

    def command(self, dirs: BuildDirs, argv: list[str]) -> Command:
        return Command(argv)

    def uv(self, uv: Path) -> str:
        return str(uv)


class BuildSandbox:
    """Example::

    runner = BuildSandbox(Path("/var/lib/kiku/stacks/kiku-24"), uv=Path("/opt/kiku/bin/uv"))
    command = runner.command(dirs, ["/tmp/buildpacks/bp0/bin/compile", "/app", ...])
    subprocess.run(command.argv, preexec_fn=command.preexec)
    """

    sandboxed = True

    def __init__(self, stack: Path, *, uv: Path | None = None, uid: int = DYNO_UID) -> None:
        self.stack = stack
        self.uid = uid
        self._uv = uv
        self._tools = {tool: shutil.which(tool) or tool for tool in TOOLS}
        self._binds = self._toolchains()
        # Loaded here, in the parent: a forked child of a threaded server must not dlopen.
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._firewall = threading.Lock()
        self._firewalled = False

    # -- BuildRunner -----------------------------------------------------------------------

    def path(self, dirs: BuildDirs, path: Path) -> str:
        for host, inside in self._places(dirs):
            if path == host or path.is_relative_to(host):
                return str(Path(inside) / path.relative_to(host))
        raise ValueError(f"{path} is not inside the build sandbox")

    def own(self, path: Path) -> None:
        # Only what the build user does not own yet (the cache is reused build after build).
        if path.stat().st_uid != self.uid:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.uid}", str(path)], check=True)

    def uv(self, uv: Path) -> str:
        return INSIDE_UV

    def command(self, dirs: BuildDirs, argv: list[str]) -> Command:
        self._close_host_services()
        stage: list[tuple[str, str]] = [("stack", str(self.stack))]
        args = [self._tools["bwrap"], "--unshare-user", "--uid", str(self.uid)]
        args += ["--gid", str(self.uid), "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "build", "--die-with-parent"]
        # The build has no terminal; a new session keeps it from any the server has.
        args += ["--new-session", "--ro-bind", str(STAGE / "stack"), "/"]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for index, (host, inside) in enumerate(self._places(dirs)):
            name = f"dir{index}"
            stage.append((name, str(host)))
            bind = "--ro-bind" if inside == INSIDE_ENV else "--bind"
            args += [bind, str(STAGE / name), inside]
        args += self._tool_args(stage)
        args += ["--chdir", INSIDE_BUILD, "--", *argv]
        uid = str(self.uid)
        setpriv = [self._tools["setpriv"], "--reuid", uid, "--regid", uid, "--clear-groups"]
        return Command([*setpriv, "--", *args], preexec=lambda: self._stage(stage))

    # -- helpers ---------------------------------------------------------------------------

    def _close_host_services(self) -> None:
        """Once, at the first build (not when a Platform is merely built)."""
        with self._firewall:
            if self._firewalled:
                return
            self._firewalled = True
            if not close_host_services(self.uid):
                log.warning(
                    "no nftables: builds can connect to services on this host's addresses "
                    "(install nftables)"
                )

    @staticmethod
    def _places(dirs: BuildDirs) -> list[tuple[Path, str]]:
        return [
            (dirs.build, INSIDE_BUILD),
            (dirs.cache, INSIDE_CACHE),
            (dirs.env, INSIDE_ENV),
            (dirs.buildpacks, INSIDE_PACKS),
        ]

    def _toolchains(self) -> list[tuple[str, Path, str, str]]:
        """The host's toolchains, bound read-only: (staged name, host dir, file in it or "",
        path inside)."""
        binds: list[tuple[str, Path, str, str]] = []
        if PYENV_VERSIONS.is_dir():
            binds.append(("pyenv", PYENV_VERSIONS, "", str(PYENV_VERSIONS)))
        for index, prefix in enumerate(sorted(Path("/opt").glob("python*"))):
            if (prefix / "bin" / "python3").exists():
                binds.append((f"opt{index}", prefix, "", str(prefix)))
        if self._uv is not None:
            uv = self._uv.resolve()
            binds.append(("uv", uv.parent, uv.name, INSIDE_UV))
        node = shutil.which("node", path="/usr/local/bin:/usr/bin:/bin")
        if node is not None:
            real = Path(node).resolve()
            binds.append(("node", real.parent, real.name, "/usr/local/bin/node"))
            npm = real.parent.parent / "lib" / "node_modules" / "npm"
            if (npm / "package.json").exists():
                binds.append(("npm", npm, "", "/usr/local/lib/node_modules/npm"))
        return binds

    def _stage(self, binds: list[tuple[str, str]]) -> None:
        """In the child, before exec: a private mount namespace with a tmpfs at STAGE and
        each source bound at STAGE/name. Syscalls only (no imports, no dlopen)."""
        libc = self._libc

        def check(result: int, what: str) -> None:
            if result != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"build sandbox: {what}: {os.strerror(errno)}")

        check(libc.unshare(CLONE_NEWNS), "unshare")
        check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
        check(libc.mount(b"kiku", str(STAGE).encode(), b"tmpfs", 0, b"mode=0755"), "tmpfs")
        for name, source in binds:
            target = f"{STAGE}/{name}"
            os.mkdir(target)
            check(libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None), name)

    def _tool_args(self, stage: list[tuple[str, str]]) -> list[str]:
        # Fresh tmpfs parents: a read-only root cannot gain mount points, a tmpfs can (and
        # the stack's own /usr/local, /opt and /root are empty).
        args: list[str] = []
        for parent in ("/usr/local", "/opt", "/root"):
            if parent == "/usr/local" or any(b[3].startswith(parent + "/") for b in self._binds):
                args += ["--perms", "0755", "--tmpfs", parent]
        for name, host, file, inside in self._binds:
            stage.append((name, str(host)))
            args += ["--ro-bind", str(STAGE / name / file) if file else str(STAGE / name), inside]
        for path in HOST_FILES + HOST_DIRS:
            if os.path.exists(path) and (self.stack / path.lstrip("/")).exists():
                args += ["--ro-bind", path, path]
        return args


def close_host_services(uid: int = DYNO_UID) -> bool:
    """Reject connections from `uid` in the host's network namespace to the host's own
    addresses (DNS excepted); False without nft. Dynos, also `uid`, live in namespaces of
    their own and are not affected."""
    owner = f"meta skuid {uid} fib daddr type local"
    rules = (
        "add table inet kiku_build\n"
        "flush table inet kiku_build\n"
        "add chain inet kiku_build output { type filter hook output priority 0; policy accept; }\n"
        f"add rule inet kiku_build output {owner} meta l4proto {{ tcp, udp }} th dport 53 accept\n"
        f"add rule inet kiku_build output {owner} reject\n"
    )
    try:
        done = subprocess.run(["nft", "-f", "-"], input=rules, capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return done.returncode == 0


def build_runner(stack_dir: Path | None, uv: Path | None) -> BuildRunner:
    """The sandbox where this host can have one; else the host, with the reason logged."""
    reason = _no_sandbox(stack_dir)
    if reason is None and stack_dir is not None:
        return BuildSandbox(stack_dir, uv=uv)
    reason = reason or "no stack configured"
    log.warning("builds run on the host, NOT sandboxed on the stack: %s", reason)
    return HostRunner(reason)


def _no_sandbox(stack_dir: Path | None) -> str | None:
    if stack_dir is None:
        return "no stack configured"
    if os.geteuid() != 0:
        return "kiku is not running as root (the sandbox needs mount and user switching)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    if not StackRoot(stack_dir).ready:
        return f"the stack at {stack_dir} is not built (scripts/build-stack.sh)"
    return None
