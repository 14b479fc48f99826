"""`git push` deploys end to end: a real `kiku server`, the real `git`, real buildpacks.

One server for the module (builds share its uv and npm caches, which keeps this fast); each
test makes its own app. The token goes to git through a credential helper (tests/gitpush.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitpush import GitRepo, PushResult
from kikuserver import KikuServer, kiku, serving
from schemacheck import BASE_URI, FORMATS, load_schema, problems

PASSWORD = "correct horse battery"
UV = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "uv"
PROCFILE = "web: python3 -m http.server $PORT\n"
REJECTED = "! [remote rejected] main -> main (pre-receive hook declined)"
FLASK_APP = (
    "from flask import Flask\n\napp = Flask(__name__)\n\n\n"
    "@app.route('/')\ndef hello():\n    return 'hello from kiku'\n"
)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KikuServer]:
    with serving(tmp_path_factory.mktemp("push") / "data") as server:
        yield server


class Pusher:
    """One user of the module's server: a token, and helpers to make apps and repos."""

    def __init__(self, server: KikuServer, email: str, root: Path) -> None:
        self.server = server
        self.root = root
        user = server.create_user(email, PASSWORD)
        with server.client() as api:
            response = api.post(
                "/oauth/authorizations",
                auth=(email, PASSWORD),
                headers={"Heroku-Two-Factor-Code": user["recovery_codes"][0]},
                json={"scope": ["global"], "description": "push tests"},
            )
        assert response.status_code == 201, response.text
        self.token: str = response.json()["access_token"]["token"]
        self.api = server.client(self.token)

    def create_app(self, name: str) -> dict[str, Any]:
        response = self.api.post("/apps", json={"name": name})
        assert response.status_code == 201, response.text
        app: dict[str, Any] = response.json()
        return app

    def repo(
        self, name: str, files: dict[str, str], *, executable: tuple[str, ...] = ()
    ) -> GitRepo:
        repo = GitRepo(self.root / "repos" / name, home=self.root / "home")
        repo.write(files, executable=executable)
        return repo

    def git_url(self, app: str) -> str:
        return f"{self.server.url}/{app}.git"

    def push(self, repo: GitRepo, app: str, refspec: str = "main") -> PushResult:
        return repo.push(self.git_url(app), self.token, refspec)

    def releases(self, app: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/apps/{app}/releases")
        assert response.status_code == 200, response.text
        releases: list[dict[str, Any]] = response.json()
        return sorted(releases, key=lambda r: r["version"])

    def slug_tar(self, app: str, slug_id: str) -> tuple[dict[str, Any], bytes]:
        slug = self.api.get(f"/apps/{app}/slugs/{slug_id}")
        assert slug.status_code == 200, slug.text
        blob = self.api.get(f"/apps/{app}/slugs/{slug_id}/blob")
        assert blob.status_code == 200, blob.text[:500]
        return slug.json(), blob.content

    def get_json(self, path: str) -> Any:
        response = self.api.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture(scope="module")
def owner(server: KikuServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pusher]:
    pusher = Pusher(server, "pusher@example.com", tmp_path_factory.mktemp("owner"))
    yield pusher
    pusher.api.close()


@pytest.fixture(scope="module")
def stranger(server: KikuServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pusher]:
    pusher = Pusher(server, "stranger@example.com", tmp_path_factory.mktemp("stranger"))
    yield pusher
    pusher.api.close()


# Heroku's schema for the resources this feature adds (schemacheck.RESOURCES does not list
# them yet, so the validators are made here from the same tightened document).
_SCHEMA = load_schema()


def _validator(resource: str) -> Any:
    from jsonschema import Draft4Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT4

    registry: Registry[Any] = Registry().with_resource(BASE_URI, DRAFT4.create_resource(_SCHEMA))
    return Draft4Validator(
        {"$ref": f"{BASE_URI}#/definitions/{resource}"}, registry=registry, format_checker=FORMATS
    )


VALIDATORS = {name: _validator(name) for name in ("release", "slug", "build")}


def assert_fits(resource: str, body: Any) -> None:
    found = problems(resource, body, VALIDATORS)
    assert not found, f"{resource} body does not fit Heroku's schema:\n{found}\n{body!r}"


def members(tgz: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def assert_pushed(result: PushResult) -> None:
    assert result.returncode == 0, result.output
    assert "Verifying deploy... done." in result.output, result.output


def assert_rejected(result: PushResult) -> None:
    assert result.returncode != 0, result.output
    assert "internal error" not in result.output, result.output


# -- deploys -------------------------------------------------------------------------------


def test_procfile_only_app(owner: Pusher) -> None:
    owner.create_app("procfile-app")
    repo = owner.repo("procfile-app", {"Procfile": PROCFILE})
    sha = repo.commit("first")

    result = owner.push(repo, "procfile-app")

    assert_pushed(result)
    out = result.output
    for line in (
        "-----> Building on the kiku-24 stack",
        "-----> Procfile app detected",
        "Procfile declares types -> web",
        "Released v2",
        "Verifying deploy... done.",
    ):
        assert line in out, out
    assert out.index("Building on the kiku-24 stack") < out.index("Released v2")
    assert "http://procfile-app.localhost:" in out

    releases = owner.releases("procfile-app")
    assert [(r["version"], r["description"]) for r in releases] == [
        (1, "Initial release"),
        (2, f"Deploy {sha[:7]}"),
    ]
    v2 = releases[1]
    assert v2["current"] is True and v2["status"] == "succeeded"
    assert releases[0]["current"] is False
    assert v2["slug"] is not None
    for release in releases:
        assert_fits("release", release)

    slug, tgz = owner.slug_tar("procfile-app", v2["slug"]["id"])
    assert_fits("slug", slug)
    assert slug["process_types"] == {"web": "python3 -m http.server $PORT"}
    assert slug["commit"] == sha
    assert slug["checksum"].startswith("SHA256:")
    assert slug["checksum"] == "SHA256:" + hashlib.sha256(tgz).hexdigest()
    assert slug["size"] == len(tgz)
    assert "./Procfile" in members(tgz)
    assert not any(name.startswith("./.git/") or name == "./.git" for name in members(tgz))

    builds = owner.get_json("/apps/procfile-app/builds")
    assert len(builds) == 1
    build = builds[0]
    assert_fits("build", build)
    assert build["status"] == "succeeded"
    assert build["source_blob"]["version"] == sha
    assert build["slug"] == {"id": slug["id"]}
    assert build["release"] == {"id": v2["id"]}
    output = owner.api.get(build["output_stream_url"])
    assert output.status_code == 200
    assert "Procfile app detected" in output.text

    # The ref moved to the pushed commit.
    assert repo.ls_remote(owner.git_url("procfile-app"), owner.token)["refs/heads/main"] == sha


def python_version() -> str:
    """A Python the host's runtime catalog has (3.11.7 when pyenv has it)."""
    pyenv = Path("/root/.pyenv/versions")
    if (pyenv / "3.11.7").is_dir():
        return "3.11.7"
    found = sorted(p.name for p in pyenv.glob("3.1[1-3].*")) if pyenv.is_dir() else []
    if not found:
        pytest.skip("no Python 3.11+ in /root/.pyenv/versions for runtime.txt")
    return found[-1]


def test_flask_app_and_cached_repush(owner: Pusher) -> None:
    version = python_version()
    owner.create_app("flask-app")
    repo = owner.repo(
        "flask-app",
        {
            "requirements.txt": "flask\ngunicorn\n",
            "runtime.txt": f"python-{version}\n",
            "app.py": FLASK_APP,
            "Procfile": "web: gunicorn app:app\n",
        },
    )
    repo.commit("flask")

    first = owner.push(repo, "flask-app")

    assert_pushed(first)
    out = first.output
    assert "-----> Python app detected" in out, out
    assert f"-----> Using Python {version} specified in runtime.txt" in out, out
    assert "Installing dependencies using 'uv pip install -r requirements.txt'" in out, out
    assert "Released v2" in out
    current = owner.releases("flask-app")[-1]
    slug, tgz = owner.slug_tar("flask-app", current["slug"]["id"])
    assert slug["process_types"] == {"web": "gunicorn app:app"}
    assert slug["buildpack_provided_description"] == "Python"
    names = members(tgz)
    assert "./.heroku/python/bin/gunicorn" in names, sorted(names)[:50]
    assert "./.profile.d/python.sh" in names
    assert "./app.py" in names

    sha = repo.commit("again", allow_empty=True)
    second = owner.push(repo, "flask-app")

    assert_pushed(second)
    # Nothing changed: the slug of the same tree is released again, without compiling.
    assert "reusing its slug" in second.output, second.output
    assert "Released v3" in second.output
    assert owner.releases("flask-app")[-1]["description"] == f"Deploy {sha[:7]}"
    assert owner.releases("flask-app")[-1]["slug"] == current["slug"]

    repo.write({"app.py": (repo.path / "app.py").read_text() + "\n# changed\n"})
    repo.commit("code change")
    third = owner.push(repo, "flask-app")
    assert_pushed(third)
    assert "Using cached dependencies (requirements.txt is unchanged since the last build)" in (
        third.output
    ), third.output
    print(f"\nflask push: first {first.seconds:.2f} s, unchanged re-push {second.seconds:.2f} s")


def test_uv_lock_app(owner: Pusher, tmp_path: Path) -> None:
    if not UV.exists():
        pytest.skip(f"{UV} is not installed")
    owner.create_app("uvlock-app")
    repo = owner.repo(
        "uvlock-app",
        {
            "pyproject.toml": (
                '[project]\nname = "uvlock-app"\nversion = "0.1.0"\n'
                'requires-python = ">=3.11"\ndependencies = ["idna"]\n'
            ),
            ".python-version": f"{python_version()}\n",
            "main.py": "import idna\n\nprint(idna.encode('kiku.example'))\n",
            "Procfile": "worker: python main.py\n",
        },
    )
    locked = subprocess.run(
        [str(UV), "lock", "--color", "never"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")},
    )
    assert locked.returncode == 0, locked.stderr
    assert (repo.path / "uv.lock").exists()
    repo.commit("uv app")

    result = owner.push(repo, "uvlock-app")

    assert_pushed(result)
    assert "-----> Python app detected" in result.output
    assert "uv sync --locked" in result.output, result.output
    current = owner.releases("uvlock-app")[-1]
    _, tgz = owner.slug_tar("uvlock-app", current["slug"]["id"])
    assert any(
        "/site-packages/idna/" in name and name.startswith("./.heroku/python/")
        for name in members(tgz)
    )


def test_node_app(owner: Pusher) -> None:
    owner.create_app("node-app")
    package = {
        "name": "node-app",
        "version": "1.0.0",
        "private": True,
        "scripts": {"start": "node index.js"},
        "dependencies": {"is-number": "7.0.0"},
    }
    repo = owner.repo(
        "node-app",
        {
            "package.json": json.dumps(package, indent=2) + "\n",
            "index.js": "const isNumber = require('is-number');\nconsole.log(isNumber(5));\n",
        },
    )
    locked = subprocess.run(
        ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(repo.home)},
    )
    assert locked.returncode == 0, locked.stdout + locked.stderr
    assert (repo.path / "package-lock.json").exists()
    repo.commit("node app")

    result = owner.push(repo, "node-app")

    assert_pushed(result)
    assert "-----> Node.js app detected" in result.output, result.output
    assert "Default types for buildpack -> web" in result.output, result.output
    current = owner.releases("node-app")[-1]
    slug, tgz = owner.slug_tar("node-app", current["slug"]["id"])
    assert slug["process_types"] == {"web": "npm start"}
    assert "./node_modules/is-number/package.json" in members(tgz)


# -- rejected pushes -----------------------------------------------------------------------


def test_broken_requirements_reject_the_push(owner: Pusher) -> None:
    owner.create_app("broken-app")
    repo = owner.repo(
        "broken-app",
        {
            "requirements.txt": "this-package-does-not-exist-kiku==1.0\n",
            "app.py": "print('never')\n",
        },
    )
    repo.commit("broken")

    result = owner.push(repo, "broken-app")

    assert_rejected(result)
    assert REJECTED in result.output, result.output
    assert " !     Push rejected, failed to compile Python app." in result.output, result.output
    assert "this-package-does-not-exist-kiku" in result.output
    assert "Released" not in result.output
    assert [r["description"] for r in owner.releases("broken-app")] == ["Initial release"]
    assert "refs/heads/main" not in repo.ls_remote(owner.git_url("broken-app"), owner.token)

    builds = owner.get_json("/apps/broken-app/builds")
    assert [b["status"] for b in builds] == ["failed"]
    assert_fits("build", builds[0])
    assert builds[0]["release"] is None and builds[0]["slug"] is None
    log = owner.api.get(builds[0]["output_stream_url"])
    assert log.status_code == 200
    assert "this-package-does-not-exist-kiku" in log.text
    assert "Push rejected, failed to compile Python app." in log.text


def test_a_failed_push_leaves_the_ref_where_it_was(owner: Pusher) -> None:
    owner.create_app("ref-app")
    repo = owner.repo("ref-app", {"Procfile": PROCFILE})
    good = repo.commit("good")
    assert_pushed(owner.push(repo, "ref-app"))
    repo.write({"Procfile": "web python3 -m http.server\n"})  # no colon
    repo.commit("bad")

    result = owner.push(repo, "ref-app")

    assert_rejected(result)
    assert REJECTED in result.output
    assert repo.ls_remote(owner.git_url("ref-app"), owner.token)["refs/heads/main"] == good
    assert [r["version"] for r in owner.releases("ref-app")] == [1, 2]


def test_other_branches_are_refused(owner: Pusher) -> None:
    owner.create_app("branch-app")
    repo = owner.repo("branch-app", {"Procfile": PROCFILE})
    repo.commit("first")
    repo.checkout_new("feature")

    result = owner.push(repo, "branch-app", "feature")

    assert_rejected(result)
    assert "! [remote rejected] feature -> feature (pre-receive hook declined)" in result.output
    refusal = [line for line in result.output.splitlines() if "feature" in line and "!" in line]
    assert any("main" in line and "master" in line for line in refusal), result.output
    assert repo.ls_remote(owner.git_url("branch-app"), owner.token) == {}
    assert owner.get_json("/apps/branch-app/builds") == []


def test_master_deploys_too(owner: Pusher) -> None:
    owner.create_app("master-app")
    repo = GitRepo(owner.root / "repos" / "master-app", home=owner.root / "home", branch="master")
    repo.write({"Procfile": PROCFILE})
    repo.commit("first")

    result = repo.push(owner.git_url("master-app"), owner.token, "master")

    assert_pushed(result)
    assert "Released v2" in result.output


def test_malformed_procfile_names_the_line(owner: Pusher) -> None:
    owner.create_app("procfile-bad")
    repo = owner.repo(
        "procfile-bad",
        {"Procfile": "web: python3 -m http.server $PORT\n\nthis line has no colon\n"},
    )
    repo.commit("bad procfile")

    result = owner.push(repo, "procfile-bad")

    assert_rejected(result)
    assert REJECTED in result.output
    errors = [line for line in result.output.splitlines() if "!" in line and "line 3" in line]
    assert errors, result.output
    assert [r["version"] for r in owner.releases("procfile-bad")] == [1]


# -- buildpacks and config -----------------------------------------------------------------


def test_custom_buildpack_from_a_local_git_repo(owner: Pusher) -> None:
    pack = owner.repo(
        "custom-buildpack",
        {
            "bin/detect": "#!/usr/bin/env bash\necho Custom\n",
            "bin/compile": (
                "#!/usr/bin/env bash\nset -e\n"
                'echo "-----> Custom build"\n'
                'echo "       stack=$STACK"\n'
                'echo "       greeting=$(cat "$3/GREETING")"\n'
                'echo "       source=$SOURCE_VERSION"\n'
                'echo built > "$1/built-by-custom.txt"\n'
                'mkdir -p "$2" && date > "$2/stamp"\n'
            ),
            "bin/release": (
                "#!/usr/bin/env bash\n"
                "cat <<'YAML'\n---\ndefault_process_types:\n  worker: ./run-worker\n"
                "  web: ignored-because-procfile-wins\nYAML\n"
            ),
        },
        executable=("bin/detect", "bin/compile", "bin/release"),
    )
    pack.commit("buildpack")
    owner.create_app("custom-bp-app")
    config = owner.api.patch("/apps/custom-bp-app/config-vars", json={"GREETING": "konnichiwa"})
    assert config.status_code == 200, config.text
    reference = f"file://{pack.path}"
    installed = owner.api.put(
        "/apps/custom-bp-app/buildpack-installations",
        json={"updates": [{"buildpack": reference}]},
    )
    assert installed.status_code == 200, installed.text
    assert [b["buildpack"]["url"] for b in installed.json()] == [reference]
    repo = owner.repo("custom-bp-app", {"Procfile": "web: ./serve\n"})
    sha = repo.commit("app")

    result = owner.push(repo, "custom-bp-app")

    assert_pushed(result)
    out = result.output
    assert "-----> Custom build" in out, out
    assert "stack=kiku-24" in out
    assert "greeting=konnichiwa" in out
    assert f"source={sha}" in out
    assert "Default types for buildpack -> worker" in out, out
    releases = owner.releases("custom-bp-app")
    assert [r["description"] for r in releases] == [
        "Initial release",
        "Set GREETING config vars",
        f"Deploy {sha[:7]}",
    ]
    slug, tgz = owner.slug_tar("custom-bp-app", releases[-1]["slug"]["id"])
    assert slug["process_types"] == {"web": "./serve", "worker": "./run-worker"}
    assert "./built-by-custom.txt" in members(tgz)
    builds = owner.get_json("/apps/custom-bp-app/builds")
    assert [b["url"] for b in builds[0]["buildpacks"]] == [reference]


def test_builds_run_in_the_stack_sandbox_without_the_data_dir(owner: Pusher) -> None:
    data = owner.server.data_dir
    pack = owner.repo(
        "probe-buildpack",
        {
            "bin/detect": "#!/usr/bin/env bash\necho Probe\n",
            "bin/compile": (
                "#!/bin/bash\n"
                'echo "       stack=$(cat /etc/kiku-stack) uid=$(id -u) at=$1"\n'
                f'ls {data} >/dev/null 2>&1 && echo "       data dir: visible"\n'
                f'cat {data}/kiku.db >/dev/null 2>&1 && echo "       kiku.db: readable"\n'
                'ls /root/.ssh >/dev/null 2>&1 && echo "       /root/.ssh: visible"\n'
                'touch /etc/written 2>/dev/null && echo "       stack: writable"\n'
                'echo "       done probing"\n'
            ),
        },
        executable=("bin/detect", "bin/compile"),
    )
    pack.commit("buildpack")
    owner.create_app("sandboxed-build")
    owner.api.put(
        "/apps/sandboxed-build/buildpack-installations",
        json={"updates": [{"buildpack": f"file://{pack.path}"}]},
    )
    repo = owner.repo("sandboxed-build", {"Procfile": PROCFILE})
    repo.commit("app")

    result = owner.push(repo, "sandboxed-build")

    assert_pushed(result)
    out = result.output
    assert "stack=kiku-24 1 uid=10000 at=/app" in out, out
    assert "done probing" in out
    assert "visible" not in out and "readable" not in out and "writable" not in out, out
    assert "building on the kiku host" not in out


def test_config_vars_and_rollback(owner: Pusher) -> None:
    owner.create_app("config-app")
    repo = owner.repo("config-app", {"Procfile": PROCFILE})
    repo.commit("one")
    assert_pushed(owner.push(repo, "config-app"))  # v2
    api = owner.api

    assert api.patch("/apps/config-app/config-vars", json={"FOO": "1"}).json() == {"FOO": "1"}
    repo.write({"Procfile": "web: python3 -m http.server $PORT\nworker: sleep 1000\n"})
    repo.commit("two")
    assert_pushed(owner.push(repo, "config-app"))  # v4
    removed = api.patch("/apps/config-app/config-vars", json={"FOO": None, "BAR": "x"})
    assert removed.json() == {"BAR": "x"}
    gone = api.patch("/apps/config-app/config-vars", json={"BAR": None})
    assert gone.json() == {}
    unchanged = api.patch("/apps/config-app/config-vars", json={"BAR": None})
    assert unchanged.status_code == 200

    for bad in ("1BAD", "HEROKU_X", "__X", "A-B"):
        response = api.patch("/apps/config-app/config-vars", json={bad: "v"})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["id"] == "invalid_params"
        assert "must start with a letter or underscore" in response.json()["message"]
        assert "HEROKU_" in response.json()["message"]
    too_big = api.patch("/apps/config-app/config-vars", json={"BIG": "x" * 33_000})
    assert too_big.status_code == 422 and "32 kB" in too_big.json()["message"]

    releases = owner.releases("config-app")
    assert [(r["version"], r["description"]) for r in releases] == [
        (1, "Initial release"),
        (2, releases[1]["description"]),
        (3, "Set FOO config vars"),
        (4, releases[3]["description"]),
        (5, "Set BAR and remove FOO config vars"),
        (6, "Remove BAR config vars"),
    ]
    assert releases[1]["description"].startswith("Deploy ")
    by_version = {r["version"]: r for r in releases}
    assert owner.get_json("/apps/config-app/releases/4/config-vars") == {"FOO": "1"}

    # Back to v4, the deploy made while FOO was set: its slug and its config come back.
    rolled = api.post("/apps/config-app/releases", json={"release": by_version[4]["id"]})
    assert rolled.status_code == 201, rolled.text
    rollback = rolled.json()
    assert_fits("release", rollback)
    assert rollback["version"] == 7
    assert rollback["description"] == "Rollback to v4"
    assert rollback["current"] is True
    assert rollback["slug"] is not None and rollback["slug"] == by_version[4]["slug"]
    assert owner.get_json("/apps/config-app/releases/7/config-vars") == {"FOO": "1"}
    assert owner.get_json("/apps/config-app/config-vars") == {"FOO": "1"}
    assert owner.get_json("/apps/config-app/releases/v6")["current"] is False
    slug = owner.get_json(f"/apps/config-app/slugs/{rollback['slug']['id']}")
    assert slug["process_types"] == {
        "web": "python3 -m http.server $PORT",
        "worker": "sleep 1000",
    }

    # And to v2, the first deploy (no config vars then).
    again = api.post("/apps/config-app/releases", json={"release": "v2"})
    assert again.status_code == 201, again.text
    assert again.json()["description"] == "Rollback to v2"
    assert again.json()["slug"] == by_version[2]["slug"]
    assert owner.get_json("/apps/config-app/releases/8/config-vars") == {}
    assert owner.get_json("/apps/config-app/config-vars") == {}

    missing = api.post("/apps/config-app/releases", json={"release": "no-such-release"})
    assert missing.status_code == 404


def test_config_change_release_keeps_the_running_slug(owner: Pusher) -> None:
    """As Heroku: a config var release runs the same slug as the release before it."""
    owner.create_app("config-slug")
    repo = owner.repo("config-slug", {"Procfile": PROCFILE})
    repo.commit("one")
    assert_pushed(owner.push(repo, "config-slug"))
    api = owner.api
    assert api.patch("/apps/config-slug/config-vars", json={"FOO": "1"}).status_code == 200
    assert api.patch("/apps/config-slug/config-vars", json={"FOO": None}).status_code == 200

    deploy, set_foo, remove_foo = owner.releases("config-slug")[1:]
    assert deploy["slug"] is not None
    assert set_foo["slug"] == deploy["slug"], set_foo
    assert remove_foo["slug"] == deploy["slug"], remove_foo
    assert set_foo["artifacts"] == deploy["artifacts"]

    # A rollback to a config release is then a rollback to that code too.
    rolled = api.post("/apps/config-slug/releases", json={"release": set_foo["id"]})
    assert rolled.status_code == 201, rolled.text
    assert rolled.json()["description"] == "Rollback to v3"
    assert rolled.json()["slug"] == deploy["slug"]
    assert owner.get_json("/apps/config-slug/config-vars") == {"FOO": "1"}


def race(owner: Pusher, app: str, repos: list[GitRepo]) -> dict[int, PushResult]:
    """Push each repo to `app` at the same moment; their results by index."""
    results: dict[int, PushResult] = {}
    start = threading.Barrier(len(repos))

    def push(n: int) -> None:
        start.wait()
        results[n] = owner.push(repos[n], app)

    threads = [threading.Thread(target=push, args=(n,)) for n in range(len(repos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert set(results) == set(range(len(repos)))
    return results


def assert_race_left_a_consistent_app(
    owner: Pusher, app: str, repos: list[GitRepo], results: dict[int, PushResult], base: int
) -> None:
    """Each push succeeded or was refused clearly; releases match what git accepted."""
    everything = "\n---\n".join(result.output for result in results.values())
    ok = [n for n, result in results.items() if result.returncode == 0]
    assert ok, everything
    for result in results.values():
        assert "internal error" not in result.output.lower(), everything
        assert "error: 500" not in result.output, everything
        if result.returncode != 0:
            # The loser is told clearly: git refuses a non-fast-forward (or the ref moved).
            assert "rejected" in result.output, everything
    final = repos[0].ls_remote(owner.git_url(app), owner.token)["refs/heads/main"]
    heads = [repo.head() for repo in repos]
    assert final in heads
    releases = owner.releases(app)
    versions = [r["version"] for r in releases]
    assert versions == list(range(1, len(versions) + 1))
    # A push git refused must not have released anything: no release for a ref that never
    # moved, and the running release is the commit the ref points at.
    deploys = [r["description"] for r in releases[base:]]
    assert deploys == [f"Deploy {heads[n][:7]}" for n in ok] or sorted(deploys) == sorted(
        f"Deploy {heads[n][:7]}" for n in ok
    ), f"{everything}\n---\nreleases after the race: {deploys}, ref at {final[:7]}"
    current = [r for r in releases if r["current"]]
    assert len(current) == 1 and current[0] is releases[-1]
    assert current[0]["description"] == f"Deploy {final[:7]}", deploys
    slug, tgz = owner.slug_tar(app, current[0]["slug"]["id"])
    assert slug["commit"] == final
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        which = tar.extractfile("./which.txt")
        assert which is not None
        assert which.read().decode() == f"repo {heads.index(final) + 1}\n"


def test_concurrent_first_pushes_to_a_new_app(owner: Pusher) -> None:
    owner.create_app("race-new")
    repos = []
    for n in (1, 2):
        repo = owner.repo(f"race-new-{n}", {"Procfile": PROCFILE, "which.txt": f"repo {n}\n"})
        repo.commit(f"repo {n}")
        repos.append(repo)

    results = race(owner, "race-new", repos)

    assert_race_left_a_consistent_app(owner, "race-new", repos, results, base=1)


def test_concurrent_pushes_to_a_deployed_app(owner: Pusher) -> None:
    owner.create_app("race-app")
    base = owner.repo("race-base", {"Procfile": PROCFILE, "which.txt": "base\n"})
    base.commit("base")
    assert_pushed(owner.push(base, "race-app"))
    repos = []
    for n in (1, 2):
        repo = owner.repo(f"race-{n}", {})
        assert repo.git("pull", "-q", str(base.path), "main").returncode == 0
        repo.write({"which.txt": f"repo {n}\n"})
        repo.commit(f"repo {n}")
        repos.append(repo)

    results = race(owner, "race-app", repos)

    assert_race_left_a_consistent_app(owner, "race-app", repos, results, base=2)


def test_push_needs_a_token_for_the_app(owner: Pusher, stranger: Pusher) -> None:
    owner.create_app("guarded-app")
    repo = owner.repo("guarded-app", {"Procfile": PROCFILE})
    repo.commit("first")

    theirs = repo.push(owner.git_url("guarded-app"), stranger.token)
    assert theirs.returncode != 0
    assert "403" in theirs.output, theirs.output
    assert stranger.token not in theirs.output

    bogus = "HRKU-not-a-real-token-0000000000000000"
    bad = repo.push(owner.git_url("guarded-app"), bogus)
    assert bad.returncode != 0
    assert "Authentication failed" in bad.output, bad.output
    assert bogus not in bad.output

    missing = repo.push(owner.git_url("no-such-app-here"), owner.token)
    assert missing.returncode != 0
    assert [r["version"] for r in owner.releases("guarded-app")] == [1]

    mine = owner.push(repo, "guarded-app")
    assert_pushed(mine)
    assert owner.token not in mine.output


# -- the CLI -------------------------------------------------------------------------------


def test_cli_config_releases_rollback_builds(
    server: KikuServer, owner: Pusher, tmp_path: Path
) -> None:
    owner.create_app("cli-app")
    repo = owner.repo("cli-app", {"Procfile": PROCFILE})
    sha = repo.commit("first")
    assert_pushed(owner.push(repo, "cli-app"))
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "KIKU_API_KEY": owner.token,
        "KIKU_API_URL": server.url,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "NO_COLOR": "1",
    }

    def run(*args: str) -> str:
        done = kiku(*args, env=env, cwd=tmp_path)
        assert done.returncode == 0, f"kiku {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    set_out = run("config:set", "A=1", "-a", "cli-app")
    assert "v3" in set_out and "A" in set_out, set_out
    assert owner.get_json("/apps/cli-app/config-vars") == {"A": "1"}

    listing = run("releases", "-a", "cli-app")
    assert "cli-app Releases - Current: v3" in listing, listing
    assert "Set A config vars" in listing
    assert f"Deploy {sha[:7]}" in listing
    assert "Initial release" in listing

    rolled = run("rollback", "-a", "cli-app")
    assert "v2" in rolled and "v4" in rolled, rolled
    releases = owner.releases("cli-app")
    assert releases[-1]["description"] == "Rollback to v2" and releases[-1]["current"]
    assert owner.get_json("/apps/cli-app/config-vars") == {}

    builds = run("builds", "-a", "cli-app")
    assert "succeeded" in builds, builds
    assert sha[:7] in builds or sha in builds, builds
    as_json = json.loads(kiku("builds", "-a", "cli-app", "--json", env=env).stdout)
    assert [b["status"] for b in as_json] == ["succeeded"]
    output = run("builds:output", as_json[0]["id"], "-a", "cli-app")
    assert "Procfile app detected" in output, output


def test_api_is_not_confused_by_git_paths(owner: Pusher) -> None:
    """`/APP.git/info/refs` without credentials answers 401 with a Basic challenge."""
    owner.create_app("anon-app")
    response = httpx.get(
        f"{owner.server.url}/anon-app.git/info/refs", params={"service": "git-receive-pack"}
    )
    assert response.status_code == 401
    assert response.headers.get("www-authenticate", "").lower().startswith("basic")
