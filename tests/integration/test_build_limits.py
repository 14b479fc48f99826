"""A runaway build is stopped by its memory limit or its timeout, and says which."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kikuserver import KikuServer

PASSWORD = "correct horse battery"
HOG = """#!/bin/sh
echo "-----> Allocating"
exec python3 -c "blocks = [bytearray(16 * 1024 * 1024) for _ in range(64)]; print(len(blocks))"
"""
SLEEPER = """#!/bin/sh
echo "-----> Sleeping"
sleep 60
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    env = {"KIKU_BUILD_MEMORY_MB": "128", "KIKU_BUILD_TIMEOUT": "3"}
    server = KikuServer(tmp_path_factory.mktemp("limits") / "data", env=env)
    server.start()
    yield server
    server.stop()


def buildpack(root: Path, compile_script: str) -> Path:
    (root / "bin").mkdir(parents=True)
    for name, text in {
        "detect": "#!/bin/sh\necho Runaway\n",
        "compile": compile_script,
        "release": "#!/bin/sh\necho ---\n",
    }.items():
        path = root / "bin" / name
        path.write_text(text)
        path.chmod(0o755)
    return root


def push_with(server: KikuServer, tmp_path: Path, app: str, compile_script: str) -> str:
    user = server.create_user(f"{app}@example.com", PASSWORD)
    with server.client() as api:
        token = api.post(
            "/oauth/authorizations",
            auth=(f"{app}@example.com", PASSWORD),
            headers={"Heroku-Two-Factor-Code": user["recovery_codes"][0]},
        ).json()["access_token"]["token"]
    with server.client(token) as api:
        api.post("/apps", json={"name": app})
        pack = buildpack(tmp_path / "bp", compile_script)
        api.put(
            f"/apps/{app}/buildpack-installations",
            json={"updates": [{"buildpack": str(pack)}]},
        )
    repo = tmp_path / "repo"
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "KIKU_T": token}
    git = ["git", "-c", "user.email=a@example.com", "-c", "user.name=A"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    (repo / "Procfile").write_text("web: sleep 1\n")
    subprocess.run([*git, "add", "."], cwd=repo, check=True, env=env)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True, env=env)
    helper = "credential.helper=!f() { echo username=kiku; echo password=$KIKU_T; }; f"
    pushed = subprocess.run(
        [*git, "-c", helper, "push", f"{server.url}/{app}.git", "main"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pushed.returncode != 0
    assert "pre-receive hook declined" in pushed.stderr
    return pushed.stderr


@pytest.mark.skipif(
    not os.access("/sys/fs/cgroup/memory", os.W_OK), reason="needs the cgroup v1 memory controller"
)
def test_out_of_memory_build_fails_saying_so(server: KikuServer, tmp_path: Path) -> None:
    output = push_with(server, tmp_path, "hog", HOG)
    assert "out of memory" in output and "128 MB" in output


def test_build_past_its_timeout_is_killed(server: KikuServer, tmp_path: Path) -> None:
    output = push_with(server, tmp_path, "sleeper", SLEEPER)
    assert "Build timed out after 3 seconds." in output
