"""The Node.js buildpack, run for real (host node, npm registry) on temp build/cache/env dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

BUILDPACKS = Path(__file__).resolve().parents[2] / "src" / "kiku" / "buildpacks"
PATH = "/usr/local/bin:/usr/bin:/bin"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on the host")


def buildpack(tmp: Path) -> Path:
    """A per-build copy of the buildpack, as kiku's slug compiler makes."""
    dest = tmp / f"bp-{time.monotonic_ns()}"
    shutil.copytree(BUILDPACKS / "nodejs", dest, symlinks=True)
    return dest


def run(bp: Path, script: str, *args: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"STACK": "kiku-24", "SOURCE_VERSION": "0" * 40, "HOME": str(home), "PATH": PATH}
    return subprocess.run(
        [str(bp / "bin" / script), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def compile_app(
    tmp: Path, app: Path, cache: Path, config: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    env_dir = tmp / f"env-{time.monotonic_ns()}"
    env_dir.mkdir()
    for key, value in (config or {}).items():
        (env_dir / key).write_text(value)
    bp = buildpack(tmp)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return run(bp, "compile", app, cache, env_dir, home=home), bp


def write_app(app: Path, package: dict[str, object], lock: bool = True) -> Path:
    app.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps(package, indent=2))
    if lock:
        subprocess.run(
            ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--silent"],
            cwd=app,
            env={**os.environ, "HOME": str(app.parent / "lockhome")},
            check=True,
            timeout=120,
        )
    return app


BUILD_SCRIPT = (
    "node -e \"require('is-odd'); require('fs').writeFileSync('built.txt', "
    "'built ' + process.env.NODE_ENV + ' ' + process.env.GREETING)\""
)
PACKAGE = {
    "name": "kiku-node-app",
    "version": "1.0.0",
    "engines": {"node": ">=18"},
    "dependencies": {"is-number": "7.0.0"},
    "devDependencies": {"is-odd": "3.0.1"},
    "scripts": {
        "heroku-prebuild": "echo prebuild-ran > prebuild.txt",
        "build": BUILD_SCRIPT,
        "heroku-cleanup": "echo cleanup-ran > cleanup.txt",
        "start": "node server.js",
    },
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app as pushed: package.json + package-lock.json (generated once)."""
    return write_app(tmp_path_factory.mktemp("src") / "app", PACKAGE)


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, source: Path
) -> tuple[Path, Path, subprocess.CompletedProcess[str], Path, float]:
    """A first build: (build dir, cache dir, result, buildpack copy, seconds)."""
    tmp = tmp_path_factory.mktemp("build")
    app = tmp / "app"
    shutil.copytree(source, app)
    cache = tmp / "cache"
    started = time.monotonic()
    result, bp = compile_app(tmp, app, cache, {"GREETING": "hello", "PATH": "/nope"})
    return app, cache, result, bp, time.monotonic() - started


def test_detect(tmp_path: Path) -> None:
    bp = buildpack(tmp_path)
    app = tmp_path / "app"
    app.mkdir()
    assert run(bp, "detect", app, home=tmp_path).returncode == 1
    (app / ".slugignore").write_text("*.psd\npackage.json\n")
    result = run(bp, "detect", app, home=tmp_path)
    assert result.returncode == 1
    assert "package.json is listed in .slugignore" in result.stderr
    (app / "package.json").write_text("{}")
    result = run(bp, "detect", app, home=tmp_path)
    assert (result.returncode, result.stdout) == (0, "Node.js\n")


def test_first_build(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float],
) -> None:
    app, _cache, result, _bp, _seconds = built
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    steps = [line for line in out.splitlines() if line.startswith("-----> ")]
    assert steps == [
        "-----> Creating runtime environment",
        "-----> Installing binaries",
        "-----> Restoring cache",
        "-----> Installing dependencies",
        "-----> Build",
        "-----> Caching build",
        "-----> Pruning devDependencies",
        "-----> Cleanup",
        "-----> Build succeeded!",
    ]
    assert "       NODE_ENV=production\n" in out
    assert "       engines.node (package.json):  >=18\n" in out
    assert "       Installing node modules (package.json + package-lock.json)\n" in out
    assert "       Running build\n" in out
    # every non-step line is a 7-space detail (or blank)
    for line in out.splitlines():
        assert line == "" or line.startswith(("-----> ", "       ")), line
    # scripts ran in order, with config vars from ENV_DIR and NODE_ENV=production
    assert (app / "prebuild.txt").read_text() == "prebuild-ran\n"
    assert (app / "built.txt").read_text() == "built production hello"
    assert (app / "cleanup.txt").read_text() == "cleanup-ran\n"
    # devDependencies were installed for the build, then pruned
    assert (app / "node_modules" / "is-number" / "package.json").exists()
    assert not (app / "node_modules" / "is-odd").exists()


def test_runtime_env_and_export(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float],
) -> None:
    app, _cache, _result, bp, _seconds = built
    profile = (app / ".profile.d" / "nodejs.sh").read_text()
    assert 'export PATH="$HOME/.heroku/node/bin:$HOME/node_modules/.bin:$PATH"' in profile
    assert 'NODE_ENV="${NODE_ENV:-production}"' in profile
    assert str(app) not in profile
    export = (bp / "export").read_text()
    assert f'export PATH="{app}/.heroku/node/bin:{app}/node_modules/.bin:$PATH"' in export
    # a later buildpack sourcing the export file gets the build's node
    probe = subprocess.run(
        ["bash", "-c", f"source {bp}/export && command -v node && node --version"],
        env={"PATH": PATH},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.splitlines()[0] == f"{app}/.heroku/node/bin/node"


def test_slug_is_relocatable(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float], tmp_path: Path
) -> None:
    """The slug runs from another directory (as /app): node, npm and modules from $HOME."""
    app = built[0]
    slug = tmp_path / "slug"
    shutil.copytree(app, slug, symlinks=True)
    script = (
        "for f in .profile.d/*.sh; do source $f; done; "
        "command -v node; node --version; npm --version; "
        "node -e \"console.log(require('is-number')(5))\"; echo $NODE_ENV"
    )
    result = subprocess.run(
        ["/bin/bash", "-c", script],
        cwd=slug,
        env={"HOME": str(slug), "PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{slug}/.heroku/node/bin/node"
    assert lines[1].startswith("v")
    assert lines[2][0].isdigit()
    assert lines[3:] == ["true", "production"]


def test_release(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float], tmp_path: Path
) -> None:
    app, _cache, _result, bp, _seconds = built
    result = run(bp, "release", app, home=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("---\n")
    assert yaml.safe_load(result.stdout) == {"default_process_types": {"web": "npm start"}}
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "package.json").write_text('{"scripts": {"build": "true"}}')
    assert yaml.safe_load(run(bp, "release", bare, home=tmp_path).stdout) == {
        "default_process_types": {}
    }
    (bare / "server.js").write_text("")
    assert yaml.safe_load(run(bp, "release", bare, home=tmp_path).stdout) == {
        "default_process_types": {"web": "npm start"}
    }


def test_rebuild_uses_cache(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float],
    source: Path,
    tmp_path: Path,
) -> None:
    """A fresh checkout rebuilt with the same cache installs offline from the npm cache."""
    _app, cache, first, _bp, first_seconds = built
    assert first.returncode == 0
    app = tmp_path / "app"
    shutil.copytree(source, app)
    started = time.monotonic()
    result, _ = compile_app(tmp_path, app, cache, {"NPM_CONFIG_OFFLINE": "true"})
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-----> Restoring cache\n       - npm cache\n" in result.stdout
    assert (app / "node_modules" / "is-number").is_dir()
    print(f"nodejs first build {first_seconds:.1f}s, cached rebuild {seconds:.1f}s")


def test_no_lockfile_development(tmp_path: Path) -> None:
    """No lockfile → npm install; NODE_ENV from ENV_DIR; no pruning outside production."""
    package = {**PACKAGE, "engines": {}, "scripts": {"build": BUILD_SCRIPT}}
    app = write_app(tmp_path / "app", package, lock=False)
    result, _ = compile_app(tmp_path, app, tmp_path / "cache", {"NODE_ENV": "development"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Installing node modules (package.json)\n" in result.stdout
    assert "Skipping because NODE_ENV is not 'production'" in result.stdout
    assert (app / "built.txt").read_text() == "built development undefined"
    assert (app / "node_modules" / "is-odd").is_dir()


def test_yarn_classic(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(
        json.dumps(
            {
                "name": "yarn-app",
                "version": "1.0.0",
                "license": "MIT",
                "dependencies": {"is-number": "7.0.0"},
                "scripts": {"build": "echo built-with-yarn > built.txt"},
            }
        )
    )
    (app / "yarn.lock").write_text(
        "# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n"
        "# yarn lockfile v1\n\n\n"
        "is-number@7.0.0:\n"
        '  version "7.0.0"\n'
        '  resolved "https://registry.yarnpkg.com/is-number/-/is-number-7.0.0.tgz'
        '#7535345b896734d5f80c4d06c50955527a14f12b"\n'
        "  integrity sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9c"
        "GvNp6NZWZUBlbGXYxxng==\n"
    )
    result, _ = compile_app(tmp_path, app, tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "       Using yarn 1." in result.stdout
    assert "       Installing node modules (yarn.lock)\n" in result.stdout
    assert "-----> Caching build\n       - yarn cache\n" in result.stdout
    assert (app / "built.txt").read_text() == "built-with-yarn\n"
    assert (app / "node_modules" / "is-number").is_dir()
    assert os.access(app / ".heroku" / "node" / "bin" / "yarn", os.X_OK)


def test_unavailable_node_version(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"engines": {"node": "4.x"}}')
    result, _ = compile_app(tmp_path, app, tmp_path / "cache")
    assert result.returncode == 1
    assert ' !     Node.js "4.x" was requested (engines.node in package.json),' in result.stderr
    host = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    assert f"this kiku host has only Node.js {host[1:]}" in result.stderr


def test_invalid_package_json_and_two_lockfiles(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": ')
    result, _ = compile_app(tmp_path, app, tmp_path / "cache")
    assert result.returncode == 1
    assert " !     Unable to parse package.json" in result.stderr
    (app / "package.json").write_text("{}")
    (app / "package-lock.json").write_text("{}")
    (app / "yarn.lock").write_text("")
    result, _ = compile_app(tmp_path, app, tmp_path / "cache")
    assert result.returncode == 1
    assert " !     Two different lockfiles found: package-lock.json yarn.lock" in result.stderr
