"""LocalBackend against real sandboxes: bubblewrap, cgroup v1, a netns per dyno.

Uses the prebuilt stack (scripts/build-stack.sh; KIKU_STACK_DIR to point elsewhere). Every
test removes the dynos, namespaces, cgroups and temp dirs it made.
"""

from __future__ import annotations

import ipaddress
import os
import select
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiku.dynos.backend import DynoHandle, DynoSpec, DynoStatus
from kiku.dynos.backends.local import LocalBackend, LocalSettings
from kiku.dynos.cgroups import CGROUP_ROOT
from kiku.dynos.stack import StackRoot

STACK = Path(os.environ.get("KIKU_STACK_DIR", "/var/lib/kiku/stacks/kiku-24"))

SERVER = """\
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        names = ("PORT", "DYNO", "HOME", "FROM_PROFILE", "CONFIG")
        body = json.dumps({k: os.environ.get(k) for k in names}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


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


class Dynos:
    """Starts dynos on a backend and removes every one at the end."""

    def __init__(self, backend: LocalBackend, slug: Path) -> None:
        self.backend = backend
        self.slug = slug
        self.handles: list[DynoHandle] = []

    def start(self, command: str, name: str = "worker.1", **fields: object) -> DynoHandle:
        spec = DynoSpec(
            dyno_id=str(uuid.uuid4()),
            app_id="app-1",
            app_name="demo",
            name=name,
            release_version=1,
            slug=self.slug,
            command=command,
            env={"CONFIG": "from-config"},
            **fields,  # type: ignore[arg-type]
        )
        handle = self.backend.start(spec)
        self.handles.append(handle)
        return handle

    def output(self, handle: DynoHandle) -> str:
        """What the dyno printed, without the times the shim stamps on each line."""
        rows = self.backend.log_path(handle).read_text().splitlines()
        return "".join(row.partition(" ")[2] + "\n" for row in rows)

    def wait_exit(self, handle: DynoHandle, timeout: float = 15.0) -> DynoStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.backend.inspect(handle)
            if not status.running:
                return status
            time.sleep(0.01)
        raise AssertionError(f"{handle.name} still running after {timeout} s")


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kiku-dynos-") as name:
        yield Path(name)


@pytest.fixture
def slug(workdir: Path) -> Path:
    src = workdir / "slug-src"
    (src / ".profile.d").mkdir(parents=True)
    (src / ".profile.d" / "x.sh").write_text("export FROM_PROFILE=yes\n")
    (src / "server.py").write_text(SERVER)
    path = workdir / "slug.tgz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname=".")
    return path


@pytest.fixture
def data_dir(workdir: Path) -> Path:
    return workdir / "data"


@pytest.fixture
def dynos(data_dir: Path, slug: Path) -> Iterator[Dynos]:
    backend = LocalBackend(LocalSettings(data_dir=data_dir, stack_dir=STACK))
    dynos = Dynos(backend, slug)
    yield dynos
    for handle in dynos.handles:
        dynos.backend.remove(handle)
    dynos.backend.close()
    keys = {h.dyno_id for h in dynos.handles}
    assert not list((data_dir / "dynos").iterdir())
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for key in keys:
        assert not (CGROUP_ROOT / "memory" / "kiku" / f"dyno-{key}").exists()
    assert not any(f"kiku-{dynos.backend.pool.network(k, 1).key}" in netns for k in keys)


def _get(url: str, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                body: bytes = response.read()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def test_web_dyno_answers_http_with_its_environment(dynos: Dynos) -> None:
    started = time.monotonic()
    handle = dynos.start("python3 server.py", name="web.1", port=5000)
    body = _get(f"http://{handle.address}:{handle.port}/")
    print(f"\ndyno start latency (start() to first HTTP 200): {time.monotonic() - started:.3f} s")

    assert b'"PORT": "5000"' in body
    assert b'"DYNO": "web.1"' in body
    assert b'"HOME": "/app"' in body
    assert b'"FROM_PROFILE": "yes"' in body
    assert b'"CONFIG": "from-config"' in body
    status = dynos.backend.inspect(handle)
    assert status.running
    assert status.memory_limit_bytes == 512 * 1024 * 1024
    assert status.memory_bytes and status.memory_bytes > 0

    stopped = time.monotonic()
    dynos.backend.stop(handle, grace=10)
    print(f"dyno stop latency: {time.monotonic() - stopped:.3f} s")
    assert dynos.backend.inspect(handle).exit_code == 143


def test_dyno_cannot_read_the_data_dir_or_other_slugs(dynos: Dynos, data_dir: Path) -> None:
    marker = data_dir / "secret"
    marker.write_text("platform secret\n")
    other_slug = data_dir / "blobs" / "slugs" / "other-app.tgz"
    other_slug.parent.mkdir(parents=True)
    other_slug.write_text("not yours")
    readers = [dynos.start(f"cat {path}") for path in (marker, other_slug, "/app/server.py")]
    codes = [dynos.wait_exit(h).exit_code for h in readers]
    assert codes[0] != 0 and codes[1] != 0
    assert codes[2] == 0, "the dyno can read its own /app"
    log = dynos.output(readers[0])
    assert "No such file or directory" in log


def test_dyno_cannot_reach_host_loopback(dynos: Dynos) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = (
            'python3 -c "import socket,sys; host=sys.argv[1]; port=int(sys.argv[2]);'
            'socket.create_connection((host, port), 2)"'
        )
        handle = dynos.start(f"{probe} 127.0.0.1 {port}")
        assert dynos.wait_exit(handle).exit_code == 1
        assert "ConnectionRefusedError" in dynos.output(handle)
        # Nor through the host end of its veth (the listener is on loopback only).
        host_end = ipaddress.IPv4Address(str(handle.address)) - 1
        other = dynos.start(f"{probe} {host_end} {port}")
        assert dynos.wait_exit(other).exit_code == 1
        readable, _, _ = select.select([listener], [], [], 0)
        assert not readable, "nothing connected to the host listener"


def test_dyno_cannot_open_connections_to_host_services_on_any_address(dynos: Dynos) -> None:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = (
            'python3 -c "import socket,sys; socket.create_connection((sys.argv[1], '
            'int(sys.argv[2])), 2)"'
        )
        web = dynos.start("sleep 30")
        host_end = ipaddress.IPv4Address(str(web.address)) - 1
        prober = dynos.start(f"{probe} {host_end} {port}")
        assert dynos.wait_exit(prober).exit_code == 1
        readable, _, _ = select.select([listener], [], [], 0)
        assert not readable, "the dyno reached a host service bound to 0.0.0.0"


@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "copy"])
def test_app_is_writable_and_private_to_each_dyno(
    dynos: Dynos, data_dir: Path, overlay: bool
) -> None:
    dynos.backend = LocalBackend(LocalSettings(data_dir=data_dir, stack_dir=STACK, overlay=overlay))
    writer = dynos.start("echo mine > /app/server.py && echo new > /app/new && cat /app/server.py")
    assert dynos.wait_exit(writer).exit_code == 0
    reader = dynos.start("head -c 6 /app/server.py && test ! -e /app/new && touch /tmp/x")
    assert dynos.wait_exit(reader).exit_code == 0
    assert dynos.output(writer) == "mine\n"
    assert dynos.output(reader).endswith("import\n")


def test_memory_limit_oom_kills_with_137(dynos: Dynos) -> None:
    handle = dynos.start(
        "python3 -c 'b = bytearray(256 * 1024 * 1024); print(len(b))'", memory_mb=64
    )
    status = dynos.wait_exit(handle)
    assert status.exit_code == 137
    assert status.oom_killed


def test_stop_sends_sigterm_to_the_app(dynos: Dynos) -> None:
    handle = dynos.start("trap 'echo got term; exit 0' TERM; while :; do sleep 0.05; done")
    time.sleep(0.3)  # let bash install its trap
    dynos.backend.stop(handle, grace=10)
    status = dynos.backend.inspect(handle)
    assert status.exit_code == 0
    assert dynos.output(handle).endswith("got term\n")


def test_stop_sigkills_after_grace(dynos: Dynos) -> None:
    handle = dynos.start("trap '' TERM; while :; do sleep 0.05; done")
    time.sleep(0.3)
    started = time.monotonic()
    dynos.backend.stop(handle, grace=0.5)
    took = time.monotonic() - started
    assert dynos.backend.inspect(handle).exit_code == 137
    assert took >= 0.5


def test_dynos_survive_a_new_backend_and_are_adopted(dynos: Dynos, data_dir: Path) -> None:
    long = dynos.start("sleep 600")
    short = dynos.start("sleep 1; exit 7")
    dynos.backend.close()  # the control plane goes away; its dynos must not

    dynos.backend = LocalBackend(LocalSettings(data_dir=data_dir, stack_dir=STACK))
    adopted = {h.dyno_id: h for h in dynos.backend.adopt()}
    assert set(adopted) == {long.dyno_id, short.dyno_id}
    assert adopted[long.dyno_id].pid == long.pid
    assert adopted[long.dyno_id] == long
    assert dynos.backend.inspect(adopted[long.dyno_id]).running
    assert dynos.wait_exit(adopted[short.dyno_id]).exit_code == 7
    dynos.backend.stop(adopted[long.dyno_id], grace=5)
    assert dynos.backend.inspect(long).exit_code == 143


def _talk(stdin_fd: int, stdout_fd: int, line: bytes) -> bytes:
    output = b""
    while b"hello" not in output:
        output += os.read(stdout_fd, 1024)
    os.write(stdin_fd, line)
    while True:
        try:
            chunk = os.read(stdout_fd, 1024)
        except OSError:  # EIO: the pty's other side is gone
            break
        if not chunk:
            break
        output += chunk
    return output


def test_attached_one_off_round_trips_and_reports_exit(dynos: Dynos) -> None:
    handle = dynos.start("echo hello; read x; echo got $x; exit 3", name="run.1234", attach=True)
    attachment = dynos.backend.attach(handle)
    assert attachment is not None
    try:
        output = _talk(attachment.stdin_fd, attachment.stdout_fd, b"ping\n")
    finally:
        os.close(attachment.stdin_fd)
        os.close(attachment.stdout_fd)
    assert output == b"hello\ngot ping\n"
    assert dynos.wait_exit(handle).exit_code == 3


def test_attached_one_off_with_a_tty(dynos: Dynos) -> None:
    command = "echo hello; [ -t 0 ] && echo tty; read x; echo got $x; exit 4"
    handle = dynos.start(command, name="run.99", attach=True, tty=True)
    attachment = dynos.backend.attach(handle)
    assert attachment is not None
    try:
        output = _talk(attachment.stdin_fd, attachment.stdout_fd, b"pong\n")
    finally:
        os.close(attachment.stdin_fd)
        os.close(attachment.stdout_fd)
    assert b"tty" in output and b"got pong" in output
    assert dynos.wait_exit(handle).exit_code == 4


def test_attach_with_a_handle_rebuilt_from_the_store(dynos: Dynos) -> None:
    # Rendezvous and the attach endpoint know a dyno by its row: no pid. Before a client
    # comes there is only the shim, and that must count as running.
    handle = dynos.start("echo hello; read x; echo got $x", name="run.7", attach=True)
    bare = DynoHandle(dyno_id=handle.dyno_id, name=handle.name, app_id=handle.app_id)
    assert dynos.backend.inspect(bare).running
    attachment = dynos.backend.attach(bare)
    assert attachment is not None
    try:
        assert _talk(attachment.stdin_fd, attachment.stdout_fd, b"x\n") == b"hello\ngot x\n"
    finally:
        os.close(attachment.stdin_fd)
        os.close(attachment.stdout_fd)
    assert dynos.wait_exit(bare).exit_code == 0


def test_only_one_of_two_racing_attachers_gets_the_dyno(dynos: Dynos) -> None:
    import concurrent.futures

    handle = dynos.start("cat", name="run.8", attach=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        results = list(pool.map(dynos.backend.attach, [handle, handle]))
        assert time.monotonic() - started < 5, "the loser is told at once"
    won = [a for a in results if a is not None]
    assert len(won) == 1
    os.write(won[0].stdin_fd, b"ping\n")
    assert os.read(won[0].stdout_fd, 100) == b"ping\n"
    os.close(won[0].stdin_fd)
    os.close(won[0].stdout_fd)
    assert dynos.wait_exit(handle).exit_code == 0


def test_stop_ends_an_attached_one_off_nobody_attached_to(dynos: Dynos) -> None:
    handle = dynos.start("echo never", name="run.9", attach=True)
    started = time.monotonic()
    dynos.backend.stop(handle, grace=10)
    assert time.monotonic() - started < 5
    status = dynos.backend.inspect(handle)
    assert not status.running and status.exit_code == 143
    assert dynos.backend.attach(handle) is None


PYENV = Path("/root/.pyenv/versions/3.11.7")


@pytest.mark.skipif(not PYENV.is_dir(), reason=f"no host interpreter at {PYENV}")
def test_host_python_runtime_prefix_is_bound(dynos: Dynos, workdir: Path) -> None:
    src = workdir / "python-slug"
    (src / ".heroku").mkdir(parents=True)
    (src / ".heroku" / "python-runtime-prefix").write_text(f"{PYENV}\n")
    dynos.slug = workdir / "python-slug.tgz"
    with tarfile.open(dynos.slug, "w:gz") as tar:
        tar.add(src, arcname=".")
    script = "import ssl, sqlite3, sys; print(sys.version.split()[0])"
    handle = dynos.start(f"{PYENV}/bin/python3 -c '{script}' && ls /root/.pyenv/versions")
    assert dynos.wait_exit(handle).exit_code == 0
    assert dynos.output(handle) == "3.11.7\n3.11.7\n"
