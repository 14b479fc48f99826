"""`ps:exec` into a real dyno (LocalBackend.exec_command): the command runs in the dyno's
namespaces and cgroups, so it counts against the dyno's limits.

Uses the prebuilt stack (scripts/build-stack.sh; KIKU_STACK_DIR to point elsewhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiku.dynos.backend import DynoHandle, DynoSpec
from kiku.dynos.backends.local import LocalBackend, LocalSettings
from kiku.dynos.cgroups import CGROUP_ROOT
from kiku.dynos.stack import StackRoot
from kiku.errors import Unavailable

STACK = Path(os.environ.get("KIKU_STACK_DIR", "/var/lib/kiku/stacks/kiku-24"))


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (netns, cgroups, the dyno uid)"
    for tool in ("bwrap", "nsenter", "setpriv", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not (CGROUP_ROOT / "memory").is_dir():
        return "no cgroup v1 memory controller"
    if not StackRoot(STACK).ready:
        return f"no stack at {STACK}: run scripts/build-stack.sh"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    backend = LocalBackend(LocalSettings(data_dir=tmp_path / "data", stack_dir=STACK))
    yield backend
    for handle in backend.adopt():
        backend.remove(handle)
    backend.close()


@pytest.fixture
def dyno(backend: LocalBackend, tmp_path: Path) -> DynoHandle:
    (tmp_path / "src").mkdir()
    slug = tmp_path / "slug.tgz"
    with tarfile.open(slug, "w:gz") as tar:
        tar.add(tmp_path / "src", arcname=".")
    spec = DynoSpec(
        dyno_id=str(uuid.uuid4()),
        app_id="app-1",
        app_name="demo",
        name="worker.1",
        release_version=1,
        slug=slug,
        command="sleep 120",
        env={},
        memory_mb=64,
        pids_max=32,
    )
    return backend.start(spec)


def run_inside(backend: LocalBackend, handle: DynoHandle, command: str) -> tuple[int, str]:
    deadline = time.monotonic() + 10
    while True:
        try:
            argv, env = backend.exec_command(handle, command)
            break
        except Unavailable:  # the app process is not there yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_exec_runs_in_the_dyno_cgroups(backend: LocalBackend, dyno: DynoHandle) -> None:
    code, out = run_inside(backend, dyno, "cat /proc/self/cgroup; id -u")
    assert code == 0, out
    # The dyno has its own cgroup namespace: its groups are "/" to whatever is in them.
    groups = dict(line.split(":", 2)[1:] for line in out.splitlines() if line.count(":") >= 2)
    assert groups["memory"] == "/" and groups["pids"] == "/", out
    assert out.splitlines()[-1] == "10000"


def test_exec_counts_against_the_dyno_memory_limit(backend: LocalBackend, dyno: DynoHandle) -> None:
    hog = "python3 -c 'b = bytearray(256 * 1024 * 1024); print(len(b))'"
    code, out = run_inside(backend, dyno, hog)
    # The dyno's 64 MB cgroup killed it (nsenter passes a child's SIGKILL on as its own).
    assert code in (137, -9), out
    assert "268435456" not in out
    assert backend.inspect(dyno).running, "the OOM killer took the hog, not the dyno"


def test_exec_counts_against_the_dyno_pids_limit(backend: LocalBackend, dyno: DynoHandle) -> None:
    code, out = run_inside(backend, dyno, "for i in $(seq 40); do sleep 3 & done; wait")
    assert "fork" in out.lower() or "resource temporarily unavailable" in out.lower(), (code, out)
