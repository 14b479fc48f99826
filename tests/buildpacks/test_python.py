"""kiku's Python buildpack (src/kiku/buildpacks/python): the real bin/* scripts on temp dirs.

PyPI is used for real installs (flask + gunicorn once, six a couple of times); every app shares
one uv download cache through a symlinked CACHE_DIR/uv so packages are fetched once per session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILDPACK = REPO / "src" / "kiku" / "buildpacks" / "python"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
VERSION_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


def find_uv() -> Path:
    for candidate in (REPO / ".venv/bin/uv", REPO / ".cache/uv-bootstrap/bin/uv"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "no uv found: expected .venv/bin/uv or .cache/uv-bootstrap/bin/uv in the repo "
        "(run scripts/setup.sh); the Python buildpack needs KIKU_UV"
    )


def discover_interpreters() -> dict[str, str]:
    """X.Y.Z -> interpreter path, for the interpreters the buildpack would discover itself."""
    patterns = ["/usr/local/bin/python3.*", "/usr/bin/python3.*"]
    roots = {os.environ.get("PYENV_ROOT", ""), "/root/.pyenv"} - {""}
    patterns += [f"{root}/versions/*/bin/python3" for root in sorted(roots)]
    patterns += ["/opt/python*/bin/python3"]
    found: dict[str, str] = {}
    for pattern in patterns:
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            if "bin/python3." in str(path) and not re.fullmatch(r"python3\.\d+", path.name):
                continue
            if not os.access(path, os.X_OK):
                continue
            try:
                out = subprocess.run(
                    [str(path), "-I", "-c", VERSION_PROBE],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=True,
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            if out.startswith("3."):
                found.setdefault(out, str(path))
    return found


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass
class Build:
    returncode: int
    output: str
    seconds: float


@dataclass
class App:
    root: Path
    build_dir: Path
    cache_dir: Path
    env_dir: Path


@pytest.fixture(scope="session")
def uv() -> Path:
    return find_uv()


@pytest.fixture(scope="session")
def interpreters() -> dict[str, str]:
    found = discover_interpreters()
    if not found:
        pytest.fail("no CPython 3 interpreter found for the runtime catalog")
    return found


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def make_app(tmp_path: Path, uv_cache: Path) -> Callable[..., App]:
    counter = iter(range(1000))

    def make(files: dict[str, str] | None = None, config: dict[str, str] | None = None) -> App:
        root = tmp_path / f"app{next(counter)}"
        app = App(root, root / "build", root / "cache", root / "env")
        for d in (app.build_dir, app.cache_dir, app.env_dir):
            d.mkdir(parents=True)
        (app.cache_dir / "uv").symlink_to(uv_cache)
        for name, content in (files or {}).items():
            path = app.build_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        for key, value in (config or {}).items():
            (app.env_dir / key).write_text(value)
        return app

    return make


def compile_app(app: App, uv: Path, **extra_env: str) -> Build:
    env = {
        "HOME": str(app.root),
        "PATH": SYSTEM_PATH,
        "STACK": "kiku-24",
        "SOURCE_VERSION": "0123456789abcdef0123456789abcdef01234567",
        "KIKU_UV": str(uv),
        **extra_env,
    }
    started = time.monotonic()
    proc = subprocess.run(
        [
            str(BUILDPACK / "bin" / "compile"),
            str(app.build_dir),
            str(app.cache_dir),
            str(app.env_dir),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
    )
    build = Build(proc.returncode, proc.stdout, time.monotonic() - started)
    print(build.output)
    return build


def fresh_checkout(app: App) -> None:
    """What the slug compiler does between builds: the source again, without build output."""
    shutil.rmtree(app.build_dir / ".heroku", ignore_errors=True)
    shutil.rmtree(app.build_dir / ".profile.d", ignore_errors=True)


def run_in(env_python: Path, code: str) -> str:
    return subprocess.run(
        [str(env_python), "-c", code],
        env={"PATH": SYSTEM_PATH},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def fake_wheel(directory: Path, name: str, version: str = "0.0.1") -> Path:
    """A minimal pure wheel holding one empty package `name` (installs offline, no build)."""
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": "",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: kiku-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, content in files.items():
        digest = hashlib.sha256(content.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={b64},{len(content.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, content in files.items():
            zf.writestr(path, content)
        zf.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


# --- bin/detect ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["requirements.txt", "uv.lock", ".python-version", "manage.py", "Pipfile"]
)
def test_detect_python_files(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("")
    proc = subprocess.run(
        [str(BUILDPACK / "bin" / "detect"), str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert proc.stdout == "Python\n"


def test_detect_venv_dir(tmp_path: Path) -> None:
    (tmp_path / "venv").mkdir()
    proc = subprocess.run([str(BUILDPACK / "bin" / "detect"), str(tmp_path)], capture_output=True)
    assert proc.returncode == 0


def test_detect_other_app(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}")
    (tmp_path / "index.js").write_text("")
    proc = subprocess.run([str(BUILDPACK / "bin" / "detect"), str(tmp_path)], capture_output=True)
    assert proc.returncode == 1
    assert proc.stdout == b""


# --- requirements.txt: flask + gunicorn, relocation, cache ----------------------------------


@pytest.fixture(scope="module")
def flask_app(tmp_path_factory: pytest.TempPathFactory, uv: Path, uv_cache: Path) -> tuple:
    root = tmp_path_factory.mktemp("flask")
    app = App(root, root / "build", root / "cache", root / "env")
    for d in (app.build_dir, app.cache_dir, app.env_dir):
        d.mkdir()
    (app.cache_dir / "uv").symlink_to(uv_cache)
    (app.build_dir / "requirements.txt").write_text("flask\ngunicorn\n")
    (app.build_dir / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    return app, compile_app(app, uv)


def test_requirements_app_builds(flask_app: tuple) -> None:
    app, build = flask_app
    print(f"first build of flask+gunicorn: {build.seconds:.2f}s")
    assert build.returncode == 0
    assert "-----> No Python version was specified. Using the buildpack default: Python 3." in (
        build.output
    )
    assert "-----> Installing Python 3." in build.output
    assert "-----> Installing dependencies using 'uv pip install -r requirements.txt'" in (
        build.output
    )
    assert "+ flask==" in build.output
    runtime = (app.build_dir / ".heroku/python-runtime").read_text().strip()
    assert Path(runtime).is_absolute() and os.access(runtime, os.X_OK)
    pyvenv = (app.build_dir / ".heroku/python/pyvenv.cfg").read_text()
    assert "relocatable = true" in pyvenv


def test_relocated_venv_works(flask_app: tuple, tmp_path: Path) -> None:
    app, _ = flask_app
    moved = tmp_path / "elsewhere" / "app"
    shutil.copytree(app.build_dir, moved, symlinks=True)
    bindir = moved / ".heroku/python/bin"
    assert run_in(bindir / "python", "import flask, sys; print(sys.prefix)") == str(
        moved / ".heroku/python"
    )
    version = subprocess.run(
        [str(bindir / "gunicorn"), "--version"],
        env={"PATH": SYSTEM_PATH},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0, version.stderr
    assert "gunicorn" in version.stdout + version.stderr
    # The .profile.d scripts point at $HOME/.heroku/python, as at dyno start (HOME=/app).
    profile = subprocess.run(
        [
            "bash",
            "-c",
            'for f in .profile.d/*.sh; do . "$f"; done; '
            'echo "$WEB_CONCURRENCY|$PYTHONPATH|$GUNICORN_CMD_ARGS|$FORWARDED_ALLOW_IPS"; '
            "command -v gunicorn",
        ],
        cwd=moved,
        env={"PATH": SYSTEM_PATH, "HOME": str(moved)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert profile == [f"2|{moved}|--access-logfile -|*", str(bindir / "gunicorn")]


def test_unchanged_rebuild_uses_cache(flask_app: tuple, uv: Path) -> None:
    app, first = flask_app
    fresh_checkout(app)
    build = compile_app(app, uv)
    print(f"flask+gunicorn: first build {first.seconds:.2f}s, cached re-build {build.seconds:.3f}s")
    assert build.returncode == 0
    assert "Using the same major version as the last build: Python 3." in build.output
    assert "-----> Restoring cache" in build.output
    assert "-----> Using cached install of Python 3." in build.output
    assert "-----> Using cached dependencies (requirements.txt is unchanged" in build.output
    assert "Installing dependencies" not in build.output
    assert build.seconds < 2.0
    assert run_in(app.build_dir / ".heroku/python/bin/python", "import flask; print('ok')") == "ok"


def test_release_without_django(flask_app: tuple) -> None:
    app, _ = flask_app
    out = subprocess.run(
        [str(BUILDPACK / "bin/release"), str(app.build_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "---\ndefault_process_types: {}\n"


# --- Python version selection -----------------------------------------------------------------


def test_runtime_txt_and_python_version(
    make_app: Callable[..., App], uv: Path, interpreters: dict[str, str]
) -> None:
    versions = sorted(interpreters, key=version_key)
    oldest, newest = versions[0], versions[-1]
    app = make_app(
        {
            "requirements.txt": "# no dependencies\n",
            "runtime.txt": f"python-{oldest}\n",
            ".python-version": f"{newest}\n",
        }
    )
    build = compile_app(app, uv)
    assert build.returncode == 0
    assert f"-----> Using Python {oldest} specified in runtime.txt" in build.output
    assert f"-----> Installing Python {oldest}" in build.output
    env_python = app.build_dir / ".heroku/python/bin/python"
    assert run_in(env_python, VERSION_PROBE) == oldest

    # Without runtime.txt, .python-version (comments allowed, major only) decides; the cache
    # built for the other version is discarded.
    fresh_checkout(app)
    (app.build_dir / "runtime.txt").unlink()
    major = newest.rsplit(".", 1)[0]
    (app.build_dir / ".python-version").write_text(f"# pinned for kiku\n\n{major}\n")
    build = compile_app(app, uv)
    assert build.returncode == 0
    assert f"-----> Using Python {major} specified in .python-version" in build.output
    assert "-----> Discarding cache since:" in build.output
    if oldest != newest:
        assert f"- The Python version has changed from {oldest} to {newest}" in build.output
    assert run_in(env_python, VERSION_PROBE).rsplit(".", 1)[0] == major


def test_unavailable_version(
    make_app: Callable[..., App], uv: Path, interpreters: dict[str, str]
) -> None:
    app = make_app({"requirements.txt": "six\n", ".python-version": "3.9.99\n"})
    build = compile_app(app, uv)
    assert build.returncode == 1
    available = ", ".join(sorted(interpreters, key=version_key))
    assert f" !     Requested Python 3.9.99 is not available. Available: {available}" in (
        build.output
    )
    assert not (app.build_dir / ".heroku/python").exists()


def test_explicit_runtime_catalog(make_app: Callable[..., App], uv: Path) -> None:
    base = os.path.realpath(sys.executable)
    version = ".".join(str(part) for part in sys.version_info[:3])
    app = make_app({"requirements.txt": "\n", ".python-version": "3.9.99\n"})
    build = compile_app(app, uv, KIKU_PYTHON_RUNTIMES=f"/nonexistent/python3:{base}")
    assert build.returncode == 1
    assert f"Available: {version}\n" in build.output


# --- package manager errors ---------------------------------------------------------------------


def test_two_package_managers(make_app: Callable[..., App], uv: Path) -> None:
    app = make_app({"requirements.txt": "six\n", "uv.lock": "version = 1\n"})
    build = compile_app(app, uv)
    assert build.returncode == 1
    assert " !     Error: Multiple Python package manager files were found." in build.output
    assert " !     requirements.txt\n !     uv.lock\n" in build.output


def test_no_package_manager(make_app: Callable[..., App], uv: Path) -> None:
    app = make_app({"app.py": "print('hi')\n", "setup.py": "\n"})
    build = compile_app(app, uv)
    assert build.returncode == 1
    assert "Couldn't find any supported Python package manager files." in build.output
    assert " !       app.py\n" in build.output
    assert "'setup.py'" in build.output


def test_pipfile_without_lock(make_app: Callable[..., App], uv: Path) -> None:
    app = make_app({"Pipfile": "[packages]\nsix = '*'\n"})
    build = compile_app(app, uv)
    assert build.returncode == 1
    assert " !     Error: No 'Pipfile.lock' found!" in build.output


def test_nonexistent_package_fails(make_app: Callable[..., App], uv: Path) -> None:
    app = make_app({"requirements.txt": "kiku-no-such-package-zz9-plural-z-alpha==1.0\n"})
    build = compile_app(app, uv)
    assert build.returncode == 1
    assert "       " in build.output and "kiku-no-such-package" in build.output
    assert " !     Error: Unable to install dependencies using uv pip." in build.output
    assert not (app.cache_dir / "python" / "venv").exists()


# --- hooks, collectstatic, release ------------------------------------------------------------


def test_hooks_get_config_vars(make_app: Callable[..., App], uv: Path) -> None:
    app = make_app(
        {
            "requirements.txt": "\n",
            "bin/pre_compile": '#!/bin/sh\necho "pre: $GREETING"\n',
            "bin/post_compile": (
                "#!/bin/sh\n"
                'echo "post: $GREETING multi=$(printf %s "$MULTI" | wc -l)"\n'
                'echo "path-has-evil: $(echo $PATH | grep -c evil)"\n'
                "python -c \"import sys; print('prefix', sys.prefix)\"\n"
                "touch post_compile_ran\n"
            ),
        },
        config={"GREETING": "hello world", "MULTI": "a\nb\n", "PATH": "/evil", "1BAD": "x"},
    )
    build = compile_app(app, uv)
    assert build.returncode == 0
    assert "-----> Running pre_compile hook\n       pre: hello world\n" in build.output
    assert "-----> Running post_compile hook\n       post: hello world multi=1\n" in build.output
    assert "path-has-evil: 0" in build.output
    assert f"prefix {app.build_dir}/.heroku/python" in build.output
    assert (app.build_dir / "post_compile_ran").exists()


def test_failing_hook_fails_build(make_app: Callable[..., App], uv: Path) -> None:
    app = make_app({"requirements.txt": "\n", "bin/post_compile": "#!/bin/sh\nexit 3\n"})
    build = compile_app(app, uv)
    assert build.returncode == 1
    assert " !     Error: Failed to run the bin/post_compile script." in build.output


def test_django_collectstatic_and_release(make_app: Callable[..., App], uv: Path) -> None:
    manage = (
        "import sys\n"
        "print('manage', ' '.join(sys.argv[1:]))\n"
        "import os\n"
        "sys.exit(1 if os.environ.get('BREAK_STATIC') else 0)\n"
    )
    app = make_app({"manage.py": manage})
    fake_wheel(app.build_dir, "django")
    fake_wheel(app.build_dir, "psycopg2")
    (app.build_dir / "requirements.txt").write_text(
        "./django-0.0.1-py3-none-any.whl\n./psycopg2-0.0.1-py3-none-any.whl\n"
    )
    build = compile_app(app, uv)
    assert build.returncode == 0
    assert "-----> $ python manage.py collectstatic --noinput\n" in build.output
    assert "       manage collectstatic --noinput --traceback\n" in build.output
    release = subprocess.run(
        [str(BUILDPACK / "bin/release"), str(app.build_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert release == "---\naddons:\n  - heroku-postgresql\ndefault_process_types: {}\n"

    fresh_checkout(app)
    (app.env_dir / "DISABLE_COLLECTSTATIC").write_text("1")
    build = compile_app(app, uv)
    assert build.returncode == 0
    assert "Skipping Django collectstatic" in build.output
    assert "manage collectstatic" not in build.output

    fresh_checkout(app)
    (app.env_dir / "DISABLE_COLLECTSTATIC").write_text("0")
    (app.env_dir / "BREAK_STATIC").write_text("yes")
    build = compile_app(app, uv)
    assert build.returncode == 1
    assert " !     Error: Unable to generate Django static files." in build.output


# --- uv.lock and Pipfile.lock -------------------------------------------------------------------


def test_uv_lock_app(
    make_app: Callable[..., App], uv: Path, interpreters: dict[str, str], uv_cache: Path
) -> None:
    newest = max(interpreters, key=version_key)
    app = make_app(
        {
            "pyproject.toml": (
                '[project]\nname = "tiny"\nversion = "0.1.0"\nrequires-python = ">=3.8"\n'
                'dependencies = ["six"]\n\n[dependency-groups]\ndev = ["idna"]\n'
            ),
        }
    )
    env = {
        "PATH": SYSTEM_PATH,
        "HOME": str(app.root),
        "UV_CACHE_DIR": str(uv_cache),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_SYSTEM_CERTS": "1",
    }
    subprocess.run(
        [str(uv), "lock", "--quiet", "--python", interpreters[newest]],
        cwd=app.build_dir,
        env=env,
        check=True,
        timeout=120,
    )
    build = compile_app(app, uv)
    assert build.returncode == 0
    assert "-----> Installing dependencies using 'uv sync --locked --no-default-groups" in (
        build.output
    )
    env_python = app.build_dir / ".heroku/python/bin/python"
    assert run_in(env_python, "import six; print('six')") == "six"
    # The dev group is not installed.
    assert run_in(env_python, "import importlib.util as u; print(u.find_spec('idna'))") == "None"


def test_pipfile_lock_app(
    make_app: Callable[..., App], uv: Path, interpreters: dict[str, str]
) -> None:
    version = min(interpreters, key=version_key)
    lock = {
        "_meta": {
            "hash": {"sha256": "0" * 64},
            "pipfile-spec": 6,
            "requires": {"python_full_version": version},
            "sources": [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}],
        },
        "default": {"six": {"index": "pypi", "version": "==1.16.0"}},
        "develop": {"idna": {"index": "pypi", "version": "==3.7"}},
    }
    app = make_app({"Pipfile": "[packages]\nsix = '*'\n", "Pipfile.lock": json.dumps(lock)})
    build = compile_app(app, uv)
    assert build.returncode == 0
    assert f"-----> Using Python {version} specified in Pipfile.lock" in build.output
    env_python = app.build_dir / ".heroku/python/bin/python"
    assert run_in(env_python, "import six; print(six.__version__)") == "1.16.0"
    assert run_in(env_python, VERSION_PROBE) == version
