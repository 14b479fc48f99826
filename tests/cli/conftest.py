"""CLI tests: `CliRunner` + a `CliContext` whose client runs on `httpx.MockTransport`.

Every test gets its own HOME (so its own ~/.netrc) and its own empty global gitconfig;
the real ones are never read or written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.clitest import API_URL, Kiku


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "KIKU_API_URL": API_URL,
    }


@pytest.fixture
def kiku(env: dict[str, str], tmp_path: Path) -> Kiku:
    work = tmp_path / "work"
    work.mkdir()
    return Kiku(env, work)


@pytest.fixture
def repo(kiku: Kiku) -> Path:
    """Make the working directory a real git repository."""
    kiku.git("init", "--quiet")
    return kiku.cwd
