"""The slug compiler's build sandbox: real bubblewrap on the prebuilt stack, as for dynos.

Uses the stack scripts/build-stack.sh builds (KIKU_STACK_DIR to point elsewhere).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiku.build.compiler import BuildFailed, BuildInput, CompileLimits, SlugCompiler
from kiku.build.sandbox import BuildSandbox, HostRunner
from kiku.dynos.stack import DYNO_UID, StackRoot
from kiku.platform import find_uv

STACK = Path(os.environ.get("KIKU_STACK_DIR", "/var/lib/kiku/stacks/kiku-24"))


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount namespaces, the dyno uid)"
    for tool in ("bwrap", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not StackRoot(STACK).ready:
        return f"no stack at {STACK}: run scripts/build-stack.sh"
    return None


sandboxed = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


def buildpack(root: Path, compile_script: str) -> Path:
    pack = root / "probe-buildpack"
    (pack / "bin").mkdir(parents=True)
    (pack / "bin" / "detect").write_text("#!/bin/bash\necho Probe\n")
    (pack / "bin" / "compile").write_text("#!/bin/bash\n" + compile_script)
    for script in ("detect", "compile"):
        (pack / "bin" / script).chmod(0o755)
    return pack


def compile_app(
    data: Path, compiler: SlugCompiler, pack: Path, config: dict[str, str] | None = None
) -> tuple[list[str], Callable[[], None]]:
    workdir = data / "tmp" / "build-1"
    source = workdir / "app"
    source.mkdir(parents=True)
    (source / "Procfile").write_text("web: ./serve\n")
    job = BuildInput(
        app_id="app-1",
        source_dir=source,
        commit="c0ffee",
        stack="kiku-24",
        buildpacks=[str(pack)],
        config=config or {},
        build_id="build-1",
    )
    lines: list[str] = []

    def build() -> None:
        compiler.compile(job, workdir, lines.append)

    return lines, build


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "kiku.db").write_text("platform secrets\n")
    return data


@sandboxed
def test_a_build_runs_on_the_stack_as_the_dyno_user_and_sees_only_its_dirs(
    data: Path, tmp_path: Path
) -> None:
    pack = buildpack(
        tmp_path,
        'echo "os: $(grep ^PRETTY_NAME /etc/os-release) stack: $(cat /etc/kiku-stack)"\n'
        'echo "uid: $(id -u) home: $HOME args: $*"\n'
        'echo "config: $(cat $3/GREETING)"\n'
        f'cat {data}/kiku.db 2>&1 | sed "s/^/data dir: /"\n'
        'ls /tmp; echo built > "$1/built.txt"; echo kept > "$2/cached.txt"\n'
        'touch "$3/new" 2>/dev/null && echo "env dir: writable"\n'
        "echo done\n",
    )
    compiler = SlugCompiler(data / "cache", uv=find_uv(), stack_dir=STACK)
    assert isinstance(compiler.runner, BuildSandbox)
    lines, build = compile_app(data, compiler, pack, {"GREETING": "hello"})

    build()

    out = "\n".join(lines)
    stack_os = (STACK / "etc/os-release").read_text().splitlines()
    pretty = next(line for line in stack_os if line.startswith("PRETTY_NAME="))
    assert f"os: {pretty} stack: kiku-24 1" in out, out
    assert f"uid: {DYNO_UID} home: /app args: /app /tmp/cache /tmp/env" in out
    assert "config: hello" in out
    assert "data dir: cat: " in out and "platform secrets" not in out
    assert "env dir: writable" not in out
    assert (data / "tmp" / "build-1" / "app" / "built.txt").read_text() == "built\n"
    assert (data / "cache" / "app-1" / "cached.txt").read_text() == "kept\n"
    assert "building on the kiku host" not in out


@sandboxed
def test_a_build_cannot_reach_services_on_the_host(data: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        pack = buildpack(
            tmp_path,
            f"(echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo reached || echo refused\n",
        )
        compiler = SlugCompiler(data / "cache", stack_dir=STACK)
        lines, build = compile_app(data, compiler, pack)

        build()

        assert "refused" in lines and "reached" not in lines
        listener.settimeout(0)
        with pytest.raises(BlockingIOError):
            listener.accept()


@sandboxed
def test_a_build_past_its_timeout_leaves_no_process_behind(data: Path, tmp_path: Path) -> None:
    marker = f"kiku-build-probe-{os.getpid()}"
    pack = buildpack(tmp_path, f"bash -c 'exec -a {marker} sleep 300' &\nsleep 300\n")
    compiler = SlugCompiler(data / "cache", stack_dir=STACK, limits=CompileLimits(timeout=1))
    _, build = compile_app(data, compiler, pack)

    with pytest.raises(BuildFailed, match="timed out"):
        build()

    deadline = time.monotonic() + 5
    while _processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes(marker)


def test_without_a_stack_builds_run_on_the_host_and_say_so(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pack = buildpack(tmp_path, "echo on the host\n")
    with caplog.at_level(logging.WARNING, logger="kiku.build.sandbox"):
        compiler = SlugCompiler(data / "cache", stack_dir=tmp_path / "no-stack")
    assert isinstance(compiler.runner, HostRunner)
    assert "NOT sandboxed" in caplog.text
    lines, build = compile_app(data, compiler, pack)

    build()

    assert " !     Warning: building on the kiku host, not in the stack's sandbox:" in lines
    assert "on the host" in lines


def _processes(marker: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if line.startswith(marker)]
