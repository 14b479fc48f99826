"""`Sandbox`: the command line that runs one dyno in bubblewrap, inside its network namespace.

    nsenter --net=/run/netns/kiku-<key>          join the dyno's prepared netns (as root)
      setpriv --reuid U --regid U --clear-groups  drop to the dyno uid: bwrap's user namespace
                                                  then maps U, never host root
        bwrap --unshare-user/pid/ipc/uts/cgroup   bwrap is PID 1, the app PID 2 (SIGTERM works)
              --ro-bind-fd <stack> /              the stack, read-only
              --bind-fd <app> /app                the dyno's private, writable copy of the slug
              --ro-bind-data hosts, resolv.conf   the dyno's own (no 5 s DNS stall at boot)
              --proc, --dev, tmpfs /tmp and /dev/shm
          bash -c '<source .profile.d/*.sh and .profile>; exec bash -c "$1"' kiku <command>

bwrap resolves every bind source as the dyno uid, which cannot traverse a data dir under
/root (mode 0700), nor a pyenv prefix there. So the shim, still root, first enters a private
mount namespace, mounts a tmpfs on `STAGE` (an empty 0755 directory on the host) and binds the
sources there (`stage_binds`); bwrap binds them from `STAGE/<name>`. The host's mount table
never changes. Small files (hosts, resolv.conf) go in as fds the shim opens (`open_fds`).
No `--die-with-parent`: dynos outlive the control plane (the shim, not kiku, is the parent).
The environment is the process environment the shim gives (nothing on the command line, so
config vars do not show in `ps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The launcher Heroku's dynos run: config vars are already in the environment; .profile.d
# scripts (alphabetical, `.sh` only) and .profile may override them; then the command.
LAUNCH = (
    'for f in /app/.profile.d/*.sh; do [ -f "$f" ] && . "$f"; done; unset f; '
    "[ -f /app/.profile ] && . /app/.profile; "
    'exec bash -c "$1"'
)
# Directories that may hold a build's interpreter prefix: a tmpfs goes over the stack's copy
# (empty, or 0700 like /root) so bwrap can create the prefix's path inside it.
PREFIX_PARENTS = ("/root", "/home", "/opt", "/srv", "/usr/local", "/mnt")
FIRST_FD = 100
STAGE = Path("/run/kiku-sandbox")


@dataclass
class Sandbox:
    """One dyno's sandbox; `argv()` and `open_fds` go to the shim."""

    name: str  # hostname: the dyno name
    netns_path: Path | None
    uid: int
    stack: Path
    app_dir: Path  # the slug: a private copy, or the shared extraction when app_layers is set
    hosts_file: Path
    resolv_file: Path
    command: str
    runtime_prefix: Path | None = None
    # (upper, work): /app is an overlay of the shared extraction (app_dir) and a private
    # upper layer, mounted by the shim; None: app_dir is the dyno's own copy.
    app_layers: tuple[Path, Path] | None = None
    new_session: bool = True  # False when the dyno has a tty as its controlling terminal
    # (path, fd number): opened read-only by the shim, inherited by bwrap.
    open_fds: list[tuple[str, int]] = field(default_factory=list)
    # (name, host path) bound, or (name, lower, upper, work) overlaid, by the shim at
    # STAGE/name in the dyno's private mount ns.
    stage_binds: list[tuple[str, ...]] = field(default_factory=list)

    def _fd(self, path: Path) -> str:
        number = FIRST_FD + len(self.open_fds)
        self.open_fds.append((str(path), number))
        return str(number)

    def _stage(self, path: Path, name: str) -> str:
        self.stage_binds.append((name, str(path)))
        return str(STAGE / name)

    def argv(self, tools: dict[str, str]) -> list[str]:
        self.open_fds, self.stage_binds = [], []
        argv: list[str] = []
        if self.netns_path is not None:
            argv += [tools["nsenter"], f"--net={self.netns_path}", "--"]
        uid = str(self.uid)
        argv += [tools["setpriv"], "--reuid", uid, "--regid", uid, "--clear-groups", "--"]
        argv += [tools["bwrap"], "--unshare-user", "--uid", uid, "--gid", uid]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        argv += ["--hostname", self.name]
        if self.new_session:
            # Keeps a dyno from pushing input into a terminal it inherited (TIOCSTI).
            argv.append("--new-session")
        argv += ["--ro-bind", self._stage(self.stack, "stack"), "/"]
        if self.app_layers is not None:
            upper, work = self.app_layers
            self.stage_binds.append(("app", str(self.app_dir), str(upper), str(work)))
            argv += ["--bind", str(STAGE / "app"), "/app"]
        else:
            argv += ["--bind", self._stage(self.app_dir, "app"), "/app"]
        argv += ["--ro-bind-data", self._fd(self.hosts_file), "/etc/hosts"]
        argv += ["--ro-bind-data", self._fd(self.resolv_file), "/etc/resolv.conf"]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
        if self.runtime_prefix is not None:
            argv += self._prefix_args(self.runtime_prefix)
        argv += ["--chdir", "/app", "--", "/bin/bash", "-c", LAUNCH, "kiku", self.command]
        return argv

    def _prefix_args(self, prefix: Path) -> list[str]:
        if (self.stack / prefix.relative_to("/")).exists():
            return []  # the stack has it (Debian's own /usr python, say)
        args: list[str] = []
        for parent in PREFIX_PARENTS:
            if prefix.is_relative_to(parent):
                args += ["--perms", "0755", "--tmpfs", parent]
                break
        return [*args, "--ro-bind", self._stage(prefix, "prefix"), str(prefix)]


def runtime_prefix(app_dir: Path, forbidden: list[Path]) -> Path | None:
    """The host interpreter prefix a Python slug's venv points at, if it may be bound.

    kiku's Python buildpack writes it to `.heroku/python-runtime-prefix`. It must be an
    existing directory (resolved), somewhere a tmpfs can hold its path, and outside kiku's
    own directories.
    """
    marker = app_dir / ".heroku" / "python-runtime-prefix"
    try:
        text = marker.read_text().strip()
    except OSError:
        return None
    prefix = Path(text).resolve()
    if not Path(text).is_absolute() or not prefix.is_dir() or prefix == Path("/"):
        raise ValueError(f"python-runtime-prefix {text!r} is not an existing directory")
    for path in forbidden:
        path = path.resolve()
        if prefix.is_relative_to(path) or path.is_relative_to(prefix):
            raise ValueError(f"python-runtime-prefix {text!r} overlaps {path}")
    usable = prefix.is_relative_to("/usr") or any(prefix.is_relative_to(p) for p in PREFIX_PARENTS)
    if not usable:
        raise ValueError(f"python-runtime-prefix {text!r} is outside {', '.join(PREFIX_PARENTS)}")
    return prefix
