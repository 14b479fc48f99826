"""`StackRoot`: the read-only root filesystem dynos run on (the `kiku-24` stack).

A Debian bookworm `minbase` tree made by debootstrap from the host's own Debian mirror, plus
the runtime libraries apps expect. It is built once into a directory (atomically: into a
sibling, then renamed) and bound read-only as `/` in every sandbox, so it already holds what
a read-only root cannot gain later: `/app`, `/etc/hosts`, a `resolv.conf` placeholder and the
dyno user.

Example::

    stack = StackRoot(Path("/var/lib/kiku/stacks/kiku-24"))
    stack.ensure()          # a fast no-op once built
    stack.path              # bind this as /

Command line (what scripts/build-stack.sh runs)::

    python -m kiku.dynos.stack /var/lib/kiku/stacks/kiku-24
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

STACK_NAME = "kiku-24"
SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
# Bump when the recipe changes: a stack built by an older recipe is rebuilt.
RECIPE_VERSION = "1"
# The uid/gid dynos run as, on the host and inside the sandbox; unused by Debian and kiku hosts.
DYNO_UID = 10000
DYNO_USER = "dyno"
# Runtime libraries apps expect (Heroku's stack images carry many more). python3 gives static
# apps `python3 -m http.server` and pulls the libraries pyenv-built interpreters link against
# (libssl3, libffi8, libsqlite3-0, libreadline8, ...); netbase gives /etc/services.
PACKAGES = ("ca-certificates", "python3", "libpq5", "curl", "procps", "tzdata", "netbase")
MARKER = "etc/kiku-stack"


def host_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the host's apt uses (deb822 `.sources` or one-line `.list` files)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for file in files:
        try:
            text = file.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1).rstrip("/")
        for match in re.finditer(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", text, re.M):
            return match.group(1).rstrip("/")
    return FALLBACK_MIRROR


class StackRoot:
    """One stack directory: `ready` once built by the current recipe; `ensure()` builds it."""

    def __init__(self, path: Path, mirror: str | None = None) -> None:
        self.path = path
        self.mirror = mirror

    @property
    def ready(self) -> bool:
        try:
            return (self.path / MARKER).read_text().split() == [STACK_NAME, RECIPE_VERSION]
        except OSError:
            return False

    def ensure(self) -> StackRoot:
        """Build the stack unless it is there; concurrent callers wait for one build."""
        if self.ready:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.ready:
                self._build()
        return self

    def _build(self) -> None:
        started = time.monotonic()
        work = self.path.with_name(self.path.name + ".building")
        shutil.rmtree(work, ignore_errors=True)
        mirror = self.mirror or host_mirror()
        log.info("building stack %s in %s from %s", STACK_NAME, self.path, mirror)
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(work),
                mirror,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _configure(work)
        old = self.path.with_name(self.path.name + ".old")
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(work, self.path)
        shutil.rmtree(old, ignore_errors=True)
        log.info("stack %s built in %.0f s", STACK_NAME, time.monotonic() - started)


def _configure(root: Path) -> None:
    """What the read-only root must hold before it is bound: mount points, user, placeholders."""
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (root / cache).glob("*"):
            if entry.is_file():
                entry.unlink()
    (root / "app").mkdir(exist_ok=True)
    (root / "app").chmod(0o755)
    # Each sandbox binds its own hosts and resolv.conf over these placeholders.
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text("# replaced in each dyno\n")
    (root / "etc/hostname").write_text("dyno\n")
    with open(root / "etc/passwd", "a") as passwd:
        passwd.write(f"{DYNO_USER}:x:{DYNO_UID}:{DYNO_UID}:kiku dyno:/app:/bin/bash\n")
    with open(root / "etc/group", "a") as group:
        group.write(f"{DYNO_USER}:x:{DYNO_UID}:\n")
    (root / "etc/default").mkdir(exist_ok=True)
    (root / "etc/default/locale").write_text("LANG=C.UTF-8\n")
    (root / MARKER).write_text(f"{STACK_NAME} {RECIPE_VERSION}\n")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="==> %(message)s")
    if len(argv) != 1:
        print("usage: python -m kiku.dynos.stack DIR", file=sys.stderr)
        return 2
    stack = StackRoot(Path(argv[0]))
    if stack.ready:
        return 0
    stack.ensure()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
