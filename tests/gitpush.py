"""Pushing real git repositories to a real `kiku server`, for integration tests and benches.

The token reaches git through a credential helper reading it from the environment
(`KIKU_TEST_TOKEN`), so it never appears in a URL, in argv or in git's output. Each `GitRepo`
has its own HOME and global gitconfig, so the host's git configuration cannot leak in.

Example::

    repo = GitRepo(tmp_path / "app", home=tmp_path / "home")
    repo.write({"Procfile": "web: python3 -m http.server $PORT\\n"})
    repo.commit("first")
    done = repo.push(f"{server.url}/my-app.git", token)
    assert done.returncode == 0, done.output
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# `$KIKU_TEST_TOKEN` is expanded by the shell git runs the helper in, not by us.
CREDENTIAL_HELPER = '!f() { echo username=kiku; echo "password=$KIKU_TEST_TOKEN"; }; f'


@dataclass
class PushResult:
    returncode: int
    output: str  # stdout and stderr together, as a user sees them
    seconds: float


class GitRepo:
    def __init__(self, path: Path, *, home: Path, branch: str = "main") -> None:
        self.path = path
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        gitconfig = home / "gitconfig"
        gitconfig.touch()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(gitconfig),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
        }
        if not (path / ".git").exists():
            path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", branch)

    def git(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if token is not None:
            env["KIKU_TEST_TOKEN"] = token
        return subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def write(self, files: dict[str, str], *, executable: tuple[str, ...] = ()) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if name in executable:
                target.chmod(0o755)

    def commit(self, message: str = "commit", *, allow_empty: bool = False) -> str:
        self._ok(self.git("add", "-A"))
        command = ["-c", "user.email=dev@example.com", "-c", "user.name=Dev", "commit", "-q"]
        if allow_empty:
            command.append("--allow-empty")
        self._ok(self.git(*command, "-m", message))
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        done = self.git("rev-parse", ref)
        self._ok(done)
        return done.stdout.strip()

    def checkout_new(self, branch: str) -> None:
        self._ok(self.git("checkout", "-q", "-b", branch))

    def _auth_args(self) -> list[str]:
        # The first, empty helper clears any inherited ones.
        return ["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}"]

    def push(self, url: str, token: str, refspec: str = "main", *extra: str) -> PushResult:
        started = time.perf_counter()
        done = self.git(*self._auth_args(), "push", *extra, url, refspec, token=token)
        seconds = time.perf_counter() - started
        return PushResult(done.returncode, done.stdout + done.stderr, seconds)

    def ls_remote(self, url: str, token: str) -> dict[str, str]:
        """The remote's refs, name -> sha."""
        done = self.git(*self._auth_args(), "ls-remote", url, token=token)
        assert done.returncode == 0, done.stdout + done.stderr
        refs = {}
        for line in done.stdout.splitlines():
            sha, _, name = line.partition("\t")
            refs[name] = sha
        return refs

    @staticmethod
    def _ok(done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stdout + done.stderr
