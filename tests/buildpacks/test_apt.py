"""The apt buildpack, run for real (host apt sources, Debian mirrors) on temp dirs."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

BUILDPACKS = Path(__file__).resolve().parents[2] / "src" / "kiku" / "buildpacks"
PATH = "/usr/local/bin:/usr/bin:/bin"

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg") is None,
    reason="needs apt-get and dpkg",
)

APTFILE = "# tools for the app\n\ntree   \n"


def buildpack(tmp: Path) -> Path:
    """A per-build copy of the buildpack, as kiku's slug compiler makes."""
    dest = tmp / f"bp-{time.monotonic_ns()}"
    shutil.copytree(BUILDPACKS / "apt", dest, symlinks=True)
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


def compile_app(tmp: Path, app: Path, cache: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    env_dir = tmp / f"env-{time.monotonic_ns()}"
    env_dir.mkdir()
    bp = buildpack(tmp)
    return run(bp, "compile", app, cache, env_dir, home=tmp), bp


def make_app(path: Path, aptfile: str) -> Path:
    path.mkdir(parents=True)
    (path / "Aptfile").write_text(aptfile)
    return path


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, subprocess.CompletedProcess[str], Path, float]:
    """A first build of an app whose Aptfile asks for `tree`: (app, cache, result, bp, s)."""
    tmp = tmp_path_factory.mktemp("apt")
    app = make_app(tmp / "app", APTFILE)
    cache = tmp / "cache"
    started = time.monotonic()
    result, bp = compile_app(tmp, app, cache)
    return app, cache, result, bp, time.monotonic() - started


def test_detect_and_release(tmp_path: Path) -> None:
    bp = buildpack(tmp_path)
    app = tmp_path / "app"
    app.mkdir()
    assert run(bp, "detect", app, home=tmp_path).returncode == 1
    (app / "Aptfile").write_text("tree\n")
    result = run(bp, "detect", app, home=tmp_path)
    assert (result.returncode, result.stdout) == (0, "Apt\n")
    result = run(bp, "release", app, home=tmp_path)
    assert result.stdout.startswith("---\n")
    assert yaml.safe_load(result.stdout) == {"default_process_types": {}}


def test_first_build(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float],
) -> None:
    app, _cache, result, _bp, _seconds = built
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("-----> Detected Aptfile or Stack changes, flushing cache\n")
    assert "-----> Updating apt caches\n" in out
    assert "-----> Fetching .debs for tree\n" in out
    assert "-----> Installing tree_" in out
    assert out.endswith("-----> Writing profile script\n")
    for line in out.splitlines():
        assert line.startswith(("-----> ", "       ")), line
    assert (app / ".apt" / "usr" / "bin" / "tree").is_file()


def test_profile_runs_the_binary(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float], tmp_path: Path
) -> None:
    """The slug, moved elsewhere (as /app), finds `tree` via .profile.d/000_apt.sh."""
    app = built[0]
    slug = tmp_path / "slug"
    shutil.copytree(app, slug, symlinks=True)
    profile = (slug / ".profile.d" / "000_apt.sh").read_text()
    assert 'export PATH="$HOME/.apt/usr/bin:' in profile
    assert "$HOME/.apt/usr/lib/x86_64-linux-gnu:" in profile
    for var in ("LD_LIBRARY_PATH", "LIBRARY_PATH", "INCLUDE_PATH", "CPATH", "CPPPATH"):
        assert f"export {var}=" in profile
    assert "export PKG_CONFIG_PATH=" in profile
    assert str(app) not in profile
    result = subprocess.run(
        [
            "/bin/bash",
            "-c",
            "source .profile.d/000_apt.sh; command -v tree; echo $LD_LIBRARY_PATH; tree --version",
        ],
        cwd=slug,
        env={"HOME": str(slug), "PATH": PATH},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    which, ld_path, version = result.stdout.splitlines()[:3]
    assert which == f"{slug}/.apt/usr/bin/tree"
    assert ld_path.startswith(f"{slug}/.apt/usr/lib/x86_64-linux-gnu:")
    assert version.startswith("tree v")


def test_export_for_later_buildpacks(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float],
) -> None:
    app, _cache, _result, bp, _seconds = built
    result = subprocess.run(
        ["/bin/bash", "-c", f"source {bp}/export && command -v tree && echo $CPATH"],
        env={"PATH": PATH},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [
        f"{app}/.apt/usr/bin/tree",
        f"{app}/.apt/usr/include:{app}/.apt/usr/include/x86_64-linux-gnu",
    ]


def test_rebuild_reuses_cache(
    built: tuple[Path, Path, subprocess.CompletedProcess[str], Path, float], tmp_path: Path
) -> None:
    _app, cache, first, _bp, first_seconds = built
    assert first.returncode == 0
    app = make_app(tmp_path / "app", APTFILE)
    started = time.monotonic()
    result, _ = compile_app(tmp_path, app, cache)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("-----> Reusing cache\n")
    assert "Need to get 0 B/" in result.stdout  # the .deb came from CACHE_DIR/apt
    assert (app / ".apt" / "usr" / "bin" / "tree").is_file()
    print(f"apt first build {first_seconds:.1f}s, cached rebuild {seconds:.1f}s")


def test_unknown_package(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", "tree\nkiku-no-such-package-xyz\n")
    result, _ = compile_app(tmp_path, app, tmp_path / "cache")
    assert result.returncode == 1
    assert "Unable to locate package kiku-no-such-package-xyz" in result.stderr
    assert (
        " !     Unable to install the Aptfile package(s) 'kiku-no-such-package-xyz': "
        "not found in the apt sources for stack kiku-24." in result.stderr
    )
    assert not (app / ".apt").exists()
