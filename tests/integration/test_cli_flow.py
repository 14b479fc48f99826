"""The `kiku` command against a real `kiku server`: the foundation's user journey."""

import os
import stat
import subprocess
from pathlib import Path

import httpx
import pyotp
import pytest

from kikuserver import KikuServer, kiku

PASSWORD = "correct horse battery"


@pytest.fixture
def home(tmp_path: Path, server: KikuServer) -> dict[str, str]:
    """A user's environment: own HOME (netrc, gitconfig), the server's URL."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KIKU_", "GIT_")) and key != "NETRC"
    }
    env.update(
        HOME=str(home),
        KIKU_API_URL=server.url,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
    )
    return env


def git_repo(path: Path, env: dict[str, str]) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    return path


def remotes(path: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["git", "remote", "-v"], cwd=path, env=env, capture_output=True, text=True
    )
    return done.stdout


def log_in(env: dict[str, str], email: str, code: str) -> subprocess.CompletedProcess[str]:
    return kiku("login", "-i", env=env, input=f"{email}\n{PASSWORD}\n{code}\n")


def test_login_create_inspect_destroy_logout(
    server: KikuServer, home: dict[str, str], tmp_path: Path
) -> None:
    user = server.create_user("dev@example.com", PASSWORD)

    not_yet = kiku("whoami", env=home)
    assert not_yet.returncode == 100 and "not logged in" in not_yet.stderr

    wrong = log_in(home, "dev@example.com", "000000")
    assert wrong.returncode == 1
    assert "Invalid two-factor code" in wrong.stderr and "Traceback" not in wrong.stderr
    assert not (Path(home["HOME"]) / ".netrc").exists()

    code = pyotp.TOTP(user["totp_secret"]).now()
    done = log_in(home, "dev@example.com", code)
    assert done.returncode == 0, done.stderr
    assert "Logged in as dev@example.com" in done.stdout + done.stderr
    netrc = Path(home["HOME"]) / ".netrc"
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    assert f"machine 127.0.0.1:{server.api_port}" in netrc.read_text()

    assert kiku("whoami", env=home).stdout.strip() == "dev@example.com"
    token = kiku("auth:token", env=home).stdout.strip()
    assert token.startswith("HRKU-")

    repo = git_repo(tmp_path / "myapp", home)
    created = kiku("create", "my-app", env=home, cwd=repo)
    assert created.returncode == 0, created.stderr
    git_url = f"{server.url}/my-app.git"
    assert git_url in created.stdout
    assert f"kiku\t{git_url} (push)" in remotes(repo, home)

    # `kiku login` set git up to ask `kiku git:credentials`: a plain push authenticates.
    (repo / "Procfile").write_text("web: python3 -m http.server $PORT\n")
    git = ["git", "-c", "user.email=dev@example.com", "-c", "user.name=Dev"]
    subprocess.run([*git, "add", "Procfile"], cwd=repo, env=home, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=repo, env=home, check=True)
    pushed = subprocess.run(
        ["git", "push", "kiku", "main"], cwd=repo, env=home, capture_output=True, text=True
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "Released v2" in pushed.stderr
    assert token not in pushed.stderr
    listed_releases = kiku("releases", env=home, cwd=repo)
    assert "Deploy" in listed_releases.stdout and "v2" in listed_releases.stdout

    generated = kiku("create", "--json", env=home, cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    assert '"name"' in generated.stdout

    listed = kiku("apps", env=home)
    assert "my-app" in listed.stdout

    info = kiku("info", env=home, cwd=repo)  # the app comes from the `kiku` remote
    assert info.returncode == 0, info.stderr
    assert "=== my-app" in info.stdout
    assert f"http://my-app.localhost:{server.router_port}/" in info.stdout
    assert "dev@example.com" in info.stdout

    other = git_repo(tmp_path / "elsewhere", home)
    assert kiku("git:remote", "-a", "my-app", env=home, cwd=other).returncode == 0
    assert f"kiku\t{git_url}" in remotes(other, home)

    refused = kiku("apps:destroy", "my-app", "--confirm", "not-my-app", env=home, cwd=repo)
    assert refused.returncode == 1 and "did not match" in refused.stderr
    assert kiku("info", "-a", "my-app", env=home).returncode == 0

    destroyed = kiku("apps:destroy", "-a", "my-app", "--confirm", "my-app", env=home, cwd=repo)
    assert destroyed.returncode == 0, destroyed.stderr
    assert "kiku" not in remotes(repo, home)
    gone = kiku("info", "-a", "my-app", env=home)
    assert gone.returncode == 1 and "Couldn't find that app." in gone.stderr

    assert kiku("logout", env=home).returncode == 0
    assert f"127.0.0.1:{server.api_port}" not in netrc.read_text()
    revoked = httpx.get(f"{server.url}/account", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401


def test_other_users_apps_and_bad_input(server: KikuServer, home: dict[str, str]) -> None:
    owner = server.create_user("owner@example.com", PASSWORD)
    stranger = server.create_user("stranger@example.com", PASSWORD)
    assert log_in(home, "owner@example.com", owner["recovery_codes"][0]).returncode == 0
    assert kiku("create", "owned", env=home).returncode == 0

    bad = kiku("create", "Bad_Name", env=home)
    assert bad.returncode == 1
    assert "Name must start with a letter" in bad.stderr
    assert "invalid_params" in bad.stderr and "Traceback" not in bad.stderr

    with server.client() as api:
        response = api.post(
            "/oauth/authorizations",
            auth=("stranger@example.com", PASSWORD),
            headers={"Heroku-Two-Factor-Code": stranger["recovery_codes"][0]},
            json={},
        )
    their_env = {**home, "KIKU_API_KEY": response.json()["access_token"]["token"]}
    denied = kiku("info", "-a", "owned", env=their_env)
    assert denied.returncode == 1
    assert "You do not have access to the app owned." in denied.stderr
    not_destroyed = kiku("apps:destroy", "-a", "owned", "--confirm", "owned", env=their_env)
    assert not_destroyed.returncode == 1
    assert kiku("info", "-a", "owned", env=home).returncode == 0


def test_debug_shows_requests_never_tokens(server: KikuServer, home: dict[str, str]) -> None:
    user = server.create_user("dev@example.com", PASSWORD)
    assert log_in(home, "dev@example.com", user["recovery_codes"][0]).returncode == 0
    token = kiku("auth:token", env=home).stdout.strip()
    traced = kiku("apps", env={**home, "KIKU_DEBUG": "1", "KIKU_DEBUG_HEADERS": "1"})
    assert traced.returncode == 0
    assert "GET" in traced.stderr and "/users/~/apps" in traced.stderr
    assert token not in traced.stderr + traced.stdout
    assert "[REDACTED]" in traced.stderr


def test_unreachable_server_is_a_clear_error(home: dict[str, str]) -> None:
    env = {**home, "KIKU_API_URL": "http://127.0.0.1:9", "KIKU_API_KEY": "HRKU-x"}
    done = kiku("apps", env=env)
    assert done.returncode == 1
    assert "Could not reach the kiku API" in done.stderr and "Traceback" not in done.stderr
