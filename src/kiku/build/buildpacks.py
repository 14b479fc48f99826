"""Where buildpacks come from: kiku's built-in ones by name, a local path, or a git URL."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kiku.errors import InvalidParams

BUILTIN_ROOT = Path(__file__).resolve().parent.parent / "buildpacks"

# Heroku's names and kiku's resolve to the same built-in buildpack.
ALIASES = {
    "heroku/python": "python",
    "kiku/python": "python",
    "heroku/nodejs": "nodejs",
    "kiku/nodejs": "nodejs",
    "heroku-community/apt": "apt",
    "heroku/apt": "apt",
    "kiku/apt": "apt",
    "heroku-community/static": "static",
    "kiku/static": "static",
}
# Tried in this order when an app has no buildpacks set (Heroku tries Node.js before Python).
DETECTION_ORDER = ("heroku/nodejs", "heroku/python", "kiku/static")


@dataclass(frozen=True)
class BuildpackRef:
    """A buildpack as the app names it, and where its files are for this build."""

    reference: str
    directory: Path


def builtin_name(reference: str) -> str | None:
    return ALIASES.get(reference.strip().lower())


def is_git_url(reference: str) -> bool:
    return reference.startswith(("https://", "http://", "git://", "ssh://", "git@", "file://"))


def check_reference(reference: str) -> str:
    """The reference as it will be stored, or a 422 saying what kiku accepts."""
    reference = reference.strip()
    if builtin_name(reference) or is_git_url(reference):
        return reference
    path = Path(reference)
    if path.is_absolute() and (path / "bin" / "compile").exists():
        return reference
    known = ", ".join(sorted(ALIASES))
    raise InvalidParams(
        f"Unknown buildpack {reference!r}. Use a built-in name ({known}), a git URL of a "
        "classic buildpack (with #ref for a branch or tag), or an absolute path to a "
        "directory holding bin/detect and bin/compile."
    )


def fetch(reference: str, workdir: Path) -> BuildpackRef:
    """A private copy of the buildpack in `workdir` (buildpacks may write into their dir)."""
    target = workdir / f"bp{len(list(workdir.iterdir()))}"
    name = builtin_name(reference)
    if name is not None:
        shutil.copytree(BUILTIN_ROOT / name, target, symlinks=True)
    elif is_git_url(reference):
        url, _, ref = reference.partition("#")
        command = ["git", "clone", "--quiet", "--depth", "1"]
        if ref:
            command += ["--branch", ref]
        done = subprocess.run(
            [*command, url, str(target)], capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise InvalidParams(f"Could not fetch buildpack {reference}: {done.stderr.strip()}")
    else:
        source = Path(reference)
        if not (source / "bin" / "compile").exists():
            raise InvalidParams(f"Buildpack {reference} has no bin/compile.")
        shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    for script in ("detect", "compile", "release"):
        path = target / "bin" / script
        if path.exists():
            path.chmod(path.stat().st_mode | 0o111)
    return BuildpackRef(reference, target)
