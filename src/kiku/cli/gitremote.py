"""Git remotes that point at kiku apps, through the real `git` binary.

The app a command acts on comes from `-a APP`, else `-r REMOTE`, else a remote named
`kiku` or `heroku` in the current repository whose URL is one of::

    http(s)://HOST[:PORT]/NAME.git    git@HOST:NAME.git    ssh://git@HOST[:PORT]/NAME.git
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from kiku.cli import KikuCliError

DEFAULT_REMOTE = "kiku"
APP_REMOTES = ("kiku", "heroku")
NO_APP = (
    "No app specified. "
    "Run this command from an app folder or specify which app to use with --app APP."
)
_NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*?)\.git/?"
_URL_FORMS = (
    re.compile(rf"^(?:https?|ssh)://(?P<host>[^/]+)/{_NAME}$"),
    re.compile(rf"^[^@/\s]+@(?P<host>[^:/\s]+):{_NAME}$"),
)


def app_from_url(url: str) -> str | None:
    """The app a git URL points at, or None if it is not an app URL."""
    return _parse(url)[1]


def host_of(url: str) -> str | None:
    """host[:port] of a git URL, without any user name."""
    return _parse(url)[0]


def _parse(url: str) -> tuple[str | None, str | None]:
    for form in _URL_FORMS:
        match = form.match(url.strip())
        if match:
            return match["host"].rpartition("@")[2], match["name"]
    return None, None


class GitRemotes:
    """The remotes of the repository at `cwd` (the process's cwd when None).

    `env` is the whole environment for git (tests point HOME and GIT_CONFIG_GLOBAL at a
    temporary directory through it).
    """

    def __init__(self, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = dict(env) if env is not None else None

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["git", *args],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError as exc:
            raise KikuCliError("git is not installed (no `git` on PATH).") from exc

    def _git_ok(self, *args: str) -> str:
        done = self._git(*args)
        if done.returncode != 0:
            raise KikuCliError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def is_repo(self) -> bool:
        try:
            return self._git("rev-parse", "--git-dir").returncode == 0
        except KikuCliError:
            return False

    def remotes(self) -> dict[str, str]:
        """Remote name → fetch URL (as `git remote -v` shows it); empty outside a repo."""
        if not self.is_repo():
            return {}
        found: dict[str, str] = {}
        for line in self._git_ok("remote", "-v").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2] == "(fetch)":
                found[parts[0]] = parts[1]
        return found

    def url(self, name: str) -> str | None:
        done = self._git("config", "--get", f"remote.{name}.url")
        if done.returncode != 0:
            return None
        return done.stdout.strip() or None

    def set(self, name: str, url: str) -> None:
        """Point remote `name` at `url`, adding it or changing where it points."""
        self._require_repo()
        exists = self.url(name) is not None
        self._git_ok("remote", "set-url" if exists else "add", name, url)

    def add(self, name: str, url: str) -> bool:
        """Add remote `name` unless it exists (then leave it alone); True if added."""
        self._require_repo()
        if self.url(name) is not None:
            return False
        self._git_ok("remote", "add", name, url)
        return True

    def use_credential_helper(self, url: str, command: str) -> None:
        """Have git ask `command` for credentials to `url` (in the user's global config)."""
        self._git_ok("config", "--global", "--replace-all", f"credential.{url}.helper", command)

    def _require_repo(self) -> None:
        if not self.is_repo():
            raise KikuCliError("Not a git repository. Run `git init` first.")

    def remove_for_app(self, app: str, git_url: str | None = None) -> list[str]:
        """Remove remotes pointing at `app` (on `git_url`'s host when known); their names."""
        host = host_of(git_url) if git_url else None
        removed = []
        for name, url in self.remotes().items():
            if app_from_url(url) == app and (host is None or host_of(url) == host):
                self._git_ok("remote", "remove", name)
                removed.append(name)
        return removed


def resolve_app(app: str | None, remote: str | None, git: GitRemotes) -> str:
    """The app a command is for: `-a`, then `-r REMOTE`, then the kiku/heroku remotes."""
    if app:
        return app
    remotes = git.remotes()
    if remote:
        url = remotes.get(remote)
        if url is None:
            raise KikuCliError(f"No git remote named {remote}.")
        named = app_from_url(url)
        if named is None:
            raise KikuCliError(f"Git remote {remote} ({url}) does not point at a kiku app.")
        return named
    apps = {a for name in APP_REMOTES if (a := app_from_url(remotes.get(name, ""))) is not None}
    if len(apps) > 1:
        raise KikuCliError(
            f"Multiple apps in git remotes: {', '.join(sorted(apps))}.\n"
            "Specify which app to use with --app APP (or --remote REMOTE)."
        )
    if not apps:
        raise KikuCliError(NO_APP)
    return apps.pop()
