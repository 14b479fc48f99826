"""The static / Procfile-only buildpack: detect, compile, release."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

BUILDPACKS = Path(__file__).resolve().parents[2] / "src" / "kiku" / "buildpacks"
PATH = "/usr/local/bin:/usr/bin:/bin"


def buildpack(tmp: Path) -> Path:
    dest = tmp / f"bp-{time.monotonic_ns()}"
    shutil.copytree(BUILDPACKS / "static", dest, symlinks=True)
    return dest


def run(bp: Path, script: str, *args: Path) -> subprocess.CompletedProcess[str]:
    env = {"STACK": "kiku-24", "SOURCE_VERSION": "0" * 40, "HOME": str(bp), "PATH": PATH}
    return subprocess.run(
        [str(bp / "bin" / script), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def app_with(tmp: Path, files: dict[str, str]) -> Path:
    app = tmp / "app"
    for name, content in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(content)
    app.mkdir(exist_ok=True)
    return app


def build(tmp: Path, app: Path) -> tuple[str | None, subprocess.CompletedProcess[str], dict]:
    bp = buildpack(tmp)
    detect = run(bp, "detect", app)
    name = detect.stdout.strip() if detect.returncode == 0 else None
    (tmp / "cache").mkdir(exist_ok=True)
    (tmp / "env").mkdir(exist_ok=True)
    compiled = run(bp, "compile", app, tmp / "cache", tmp / "env")
    release = run(bp, "release", app)
    assert release.returncode == 0
    assert release.stdout.startswith("---\n")
    return name, compiled, yaml.safe_load(release.stdout)


@pytest.mark.parametrize(
    ("files", "name"),
    [
        ({"index.html": "<h1>hi</h1>"}, "Static"),
        ({"public/index.html": "<h1>hi</h1>", "README.md": "x"}, "Static"),
        ({"Procfile": "worker: ./run.sh\n"}, "Procfile"),
        ({"index.html": "x", "Procfile": "web: ./serve\n"}, "Static"),
        ({"index.html": "x", "package.json": "{}"}, None),
        ({"public/index.html": "x", "requirements.txt": ""}, None),
        ({"Procfile": "web: python app.py\n", "app.py": ""}, None),
        ({"Procfile": "web: x\n", "venv/bin/python": ""}, None),
        ({"public/other.html": "x"}, None),
        ({"README.md": "x"}, None),
    ],
)
def test_detect(tmp_path: Path, files: dict[str, str], name: str | None) -> None:
    app = app_with(tmp_path, files)
    result = run(buildpack(tmp_path), "detect", app)
    if name is None:
        assert (result.returncode, result.stdout) == (1, "")
    else:
        assert (result.returncode, result.stdout) == (0, f"{name}\n")


def test_static_public(tmp_path: Path) -> None:
    app = app_with(tmp_path, {"public/index.html": "<h1>hi</h1>"})
    name, compiled, release = build(tmp_path, app)
    assert name == "Static"
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stdout.startswith("-----> Static site: serving public (index.html found)\n")
    web = release["default_process_types"]["web"]
    if (app / ".heroku" / "static" / "bin" / "busybox").exists():
        assert web == ".heroku/static/bin/busybox httpd -f -v -p 0.0.0.0:$PORT -h public"
    else:
        assert web == "python3 -m http.server $PORT --bind 0.0.0.0 --directory public"
        assert "python3 -m http.server" in compiled.stdout


def test_static_root_warns(tmp_path: Path) -> None:
    app = app_with(tmp_path, {"index.html": "x", "Procfile": "web: ./serve\n"})
    name, compiled, release = build(tmp_path, app)
    assert name == "Static"
    assert compiled.returncode == 0
    assert "Static site: serving the app root" in compiled.stdout
    assert " !     index.html is at the app root" in compiled.stderr
    assert "The Procfile declares web" in compiled.stdout
    assert release["default_process_types"]["web"].endswith(" .")


def test_procfile_only(tmp_path: Path) -> None:
    app = app_with(tmp_path, {"Procfile": "web: ./bin/server --port $PORT\nworker: ./w\n"})
    name, compiled, release = build(tmp_path, app)
    assert name == "Procfile"
    assert compiled.returncode == 0
    # The process types are listed once, by kiku's "Discovering process types" step.
    assert compiled.stdout == "-----> Procfile-only app: nothing to install\n"
    assert release == {"default_process_types": {}}


def test_nothing_to_build(tmp_path: Path) -> None:
    app = app_with(tmp_path, {"README.md": "x"})
    name, compiled, release = build(tmp_path, app)
    assert name is None
    assert compiled.returncode == 1
    assert " !     Nothing to build: the app has no index.html" in compiled.stderr
    assert release == {"default_process_types": {}}


def test_served_by_python_http_server(tmp_path: Path) -> None:
    """The default web command serves the site (python3 as on the kiku-24 stack)."""
    python3 = shutil.which("python3", path=PATH)
    if python3 is None:
        pytest.skip("no python3 in /usr/bin")
    app = app_with(tmp_path, {"public/index.html": "<h1>kiku static</h1>"})
    _name, _compiled, release = build(tmp_path, app)
    web = release["default_process_types"]["web"]
    if not web.startswith("python3 "):
        pytest.skip("busybox httpd is used on this host")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = web.replace("$PORT", str(port)).replace("0.0.0.0", "127.0.0.1")
    proc = subprocess.Popen(
        ["/bin/sh", "-c", f"exec {command}"],
        cwd=app,
        env={"PATH": PATH, "HOME": str(app)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 10
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.read() == b"<h1>kiku static</h1>"
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
