"""Helpers for the CLI tests: run `kiku …` in-process against a plain handler function."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

from kiku.cli.context import CliContext
from kiku.cli.main import build_cli
from kiku.cli.printer import Printer

API_URL = "http://127.0.0.1:5100"
MACHINE = "127.0.0.1:5100"
# Only the CLI's own topics: the server-side command modules are tested elsewhere.
CLIENT_MODULES = ("auth", "apps", "git")

Handler = Callable[[httpx.Request], httpx.Response]


def reply(status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
    """A JSON answer, as the kiku API gives."""
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def not_found(request: httpx.Request) -> httpx.Response:
    return reply(404, {"id": "not_found", "message": f"No route for {request.url.path}"})


@dataclass
class Run:
    result: Result
    requests: list[httpx.Request]

    @property
    def output(self) -> str:
        return self.result.output

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


@dataclass
class Kiku:
    """Runs `kiku ARGS…` in-process against a handler function."""

    env: dict[str, str]
    cwd: Path
    opened: list[str] = field(default_factory=list)

    @property
    def netrc(self) -> Path:
        return Path(self.env["HOME"]) / ".netrc"

    def __call__(
        self, *args: str, handler: Handler = not_found, input: str | None = None, **env: str
    ) -> Run:
        requests: list[httpx.Request] = []

        def recording(request: httpx.Request) -> httpx.Response:
            request.read()
            requests.append(request)
            return handler(request)

        context = CliContext.from_env(
            {**self.env, **env},
            transport=httpx.MockTransport(recording),
            printer=Printer(color=False),
            cwd=self.cwd,
            open_url=self.opened.append,
        )
        # Rich would colour errors if the developer's shell forces colour; tests want text.
        plain = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None}
        result = CliRunner().invoke(
            build_cli(CLIENT_MODULES), list(args), input=input, obj=context, env=plain
        )
        return Run(result, requests)

    def login_as(self, email: str = "dev@example.com", token: str = "tok-123") -> None:
        self.netrc.write_text(f"machine {MACHINE}\n  login {email}\n  password {token}\n")
        self.netrc.chmod(0o600)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd or self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout
