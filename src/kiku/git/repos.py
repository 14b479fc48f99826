"""`Repos`: one bare repository per app (by id, so renames keep it), with kiku's hook."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

HOOK = """#!/bin/sh
# kiku: hands the push to the platform's builder and relays its output (see kiku.git.hook).
exec "{python}" -m kiku.git.hook
"""


class Repos:
    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.python = python
        # Two first pushes may arrive at once; one of them creates the repository.
        self._creating = threading.Lock()

    def path(self, app_id: str) -> Path:
        return self.root / f"{app_id}.git"

    def ensure(self, app_id: str) -> Path:
        with self._creating:
            return self._ensure(app_id)

    def _ensure(self, app_id: str) -> Path:
        path = self.path(app_id)
        if not (path / "HEAD").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)],
                check=True,
            )
            # Heroku accepts force pushes; deleting the deployed branch is refused.
            for key, value in (("receive.denyDeletes", "true"), ("gc.auto", "0")):
                subprocess.run(["git", "-C", str(path), "config", key, value], check=True)
        hook = path / "hooks" / "pre-receive"
        text = HOOK.format(python=self.python)
        if not hook.exists() or hook.read_text() != text:
            hook.write_text(text)
            hook.chmod(0o755)
        return path

    def head(self, app_id: str, ref: str) -> str | None:
        """The commit `ref` points at now, or None when it does not exist."""
        done = subprocess.run(
            ["git", "-C", str(self.path(app_id)), "rev-parse", "--verify", "--quiet", ref],
            capture_output=True,
            text=True,
        )
        return done.stdout.strip() or None if done.returncode == 0 else None

    def size(self, app_id: str) -> int:
        path = self.path(app_id)
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    def remove(self, app_id: str) -> None:
        shutil.rmtree(self.path(app_id), ignore_errors=True)
