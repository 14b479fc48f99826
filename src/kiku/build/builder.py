"""`Builder`: one build of one pushed commit, from checkout to release, recorded in the store.

Per app, builds run one at a time: a second push waits for the first (and says so).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.build.blobs import BlobStore
from kiku.build.compiler import (
    BuildFailed,
    BuildInput,
    CompiledSlug,
    Emit,
    SlugCompiler,
    new_workdir,
)
from kiku.platform import Platform
from kiku.store.models import App, Build, Release, Slug, User


@dataclass(frozen=True)
class PushedCommit:
    """What the git receiver hands over: which app, who pushed, and how to read the objects."""

    app_id: str
    user_id: str | None
    commit: str
    repo: Path
    ref: str
    # What the pusher believed the branch pointed at (None: a new branch).
    previous: str | None
    # GIT_* variables of the pre-receive hook: pushed objects sit in a quarantine until
    # the hook accepts them, so `git archive` must look there too.
    git_env: Mapping[str, str]


@dataclass(frozen=True)
class BuildOutcome:
    ok: bool
    release_version: int | None = None
    release_id: str | None = None
    # The release waits for its release phase, which the dyno manager runs.
    release_pending: bool = False


class Builder:
    def __init__(
        self,
        platform: Platform,
        compiler: SlugCompiler,
        blobs: BlobStore,
        *,
        settle_timeout: float = 10.0,
    ) -> None:
        self.platform = platform
        self.compiler = compiler
        self.blobs = blobs
        self.settle_timeout = settle_timeout
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # The ref each app's last released push will move, once git gets to it.
        self._released: dict[str, tuple[str, str]] = {}

    def _lock(self, app_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(app_id, threading.Lock())

    def build(self, push: PushedCommit, emit: Emit) -> BuildOutcome:
        lock = self._lock(push.app_id)
        if not lock.acquire(blocking=False):
            emit("-----> Another build of this app is running; waiting for it to finish...")
            lock.acquire()
        try:
            if not self._still_current(push, emit):
                return BuildOutcome(ok=False)
            outcome = self._build(push, emit)
            if outcome.ok:
                self._released[push.app_id] = (push.ref, push.commit)
            return outcome
        finally:
            lock.release()

    def _still_current(self, push: PushedCommit, emit: Emit) -> bool:
        """Refuse a push that waited while another moved the branch: it would release a
        commit git is about to refuse. The previous push's ref update lands just after its
        hook returns, so wait briefly for it first."""
        repos = self.platform.repos
        released = self._released.get(push.app_id)
        if released is not None and released[0] == push.ref:
            deadline = time.monotonic() + self.settle_timeout
            while repos.head(push.app_id, push.ref) != released[1]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        if repos.head(push.app_id, push.ref) == push.previous:
            return True
        branch = push.ref.removeprefix("refs/heads/")
        emit(f" !     Push rejected: {branch} was updated by another push while this one waited.")
        emit(f" !     Fetch, merge or rebase, and push again (git pull kiku {branch}).")
        return False

    def _build(self, push: PushedCommit, emit: Emit) -> BuildOutcome:
        log: list[str] = []
        events = self.platform.events

        def record(line: str) -> None:
            log.append(line)
            emit(line)
            if line.strip():
                events.system(push.app_id, "slug-compiler", line)

        build_id, job = self._start(push)
        events.api(push.app_id, "Build started", self._email(push))
        events.system(push.app_id, "slug-compiler", "Slug compilation started")
        tree = _tree(push)
        source_key = _source_key(tree, job.buildpacks, job)
        reusable = self._reusable_slug(push.app_id, source_key)
        if reusable is not None:
            record(f"-----> Building on the {job.stack} stack")
            record("-----> Nothing changed since the last build of this source (same tree,")
            record("       buildpacks, stack and config): reusing its slug")
            record("")
            return self._release(push, build_id, reusable, None, record, log)
        workdir = new_workdir(self.platform.settings.data_dir / "tmp")
        try:
            source = workdir / "app"
            _checkout(push, source)
            job.source_dir = source
            compiled = self.compiler.compile(job, workdir, record)
            # Keyed by the buildpacks that ran: the next push names them (detection saves them).
            built_key = _source_key(tree, compiled.buildpacks, job)
            return self._release(push, build_id, None, (compiled, built_key), record, log)
        except BuildFailed as exc:
            for line in exc.message.splitlines():
                record(line if line.startswith(" ") else f" !     {line}")
            record("")
            record(" !     Push failed")
            self._finish_failed(build_id, log)
            return BuildOutcome(ok=False)
        except Exception:
            record(" !     Build failed: an internal error occurred; the operator's log has more.")
            self._finish_failed(build_id, log)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _email(self, push: PushedCommit) -> str | None:
        with self.platform.store.session() as db:
            user = db.get(User, push.user_id) if push.user_id else None
            return user.email if user else None

    def _start(self, push: PushedCommit) -> tuple[str, BuildInput]:
        with self.platform.store.session() as db:
            app = db.get(App, push.app_id)
            assert app is not None
            now = self.platform.now()
            build = Build(
                app_id=app.id,
                user_id=push.user_id,
                status="pending",
                source_version=push.commit,
                buildpacks=list(app.buildpacks),
                stack=app.build_stack,
                created_at=now,
                updated_at=now,
            )
            db.add(build)
            db.flush()
            job = BuildInput(
                app_id=app.id,
                source_dir=Path(),
                commit=push.commit,
                stack=app.build_stack,
                buildpacks=list(app.buildpacks),
                config=dict(app.config),
                build_id=build.id,
            )
            return build.id, job

    def _finish_failed(self, build_id: str, log: list[str]) -> None:
        with self.platform.store.session() as db:
            build = db.get(Build, build_id)
            if build is not None:
                api = self.platform.settings.api_url
                url = f"{api}/apps/{build.app_id}/builds/{build.id}/output"
                self.platform.events.api(
                    build.app_id, f"Build failed -- check your build output: {url}"
                )
                build.status = "failed"
                build.output = "\n".join(log) + "\n"
                build.updated_at = self.platform.now()

    def _reusable_slug(self, app_id: str, source_key: str) -> str | None:
        with self.platform.store.session() as db:
            query = (
                select(Slug)
                .where(Slug.app_id == app_id, Slug.source_key == source_key)
                .order_by(Slug.created_at.desc())
                .limit(1)
            )
            slug = db.scalar(query)
            if slug is None or not self.blobs.exists(slug.blob_key):
                return None
            return slug.id

    def _release(
        self,
        push: PushedCommit,
        build_id: str,
        reused: str | None,
        compiled: tuple[CompiledSlug, str] | None,
        record: Emit,
        log: list[str],
    ) -> BuildOutcome:
        """Release a slug: a reused one (by id), or a compiled one stored here."""
        with self.platform.store.session() as db:
            app = db.get(App, push.app_id)
            build = db.get(Build, build_id)
            assert app is not None and build is not None
            user = db.get(User, push.user_id) if push.user_id else None
            now = self.platform.now()
            self.platform.events.system(app.id, "slug-compiler", "Slug compilation finished")
            self.platform.events.api(app.id, "Build succeeded")
            if compiled is not None:
                slug = self._store_slug(db, app, build, push, *compiled)
            else:
                found = db.get(Slug, reused)
                assert found is not None
                slug = found
            release = self.platform.apps.releases.create(
                db, app, description=f"Deploy {push.commit[:7]}", user=user, slug=slug
            )
            record("-----> Launching...")
            pending = release.status == "pending"
            if pending:
                record(
                    " !     Release command declared: this new release will not be available "
                    "until the command succeeds."
                )
            record(f"       Released v{release.version}")
            record(f"       {self.platform.settings.web_url(app.name)} deployed to kiku")
            record("")
            build.status = "succeeded"
            build.slug_id = slug.id
            build.release_id = release.id
            build.buildpacks = list(app.buildpacks)
            build.output = "\n".join(log) + "\n"
            build.updated_at = now
            return BuildOutcome(
                ok=True,
                release_version=release.version,
                release_id=release.id,
                release_pending=pending,
            )

    def _store_slug(
        self,
        db: Session,
        app: App,
        build: Build,
        push: PushedCommit,
        compiled: CompiledSlug,
        source_key: str,
    ) -> Slug:
        now = self.platform.now()
        slug = Slug(
            app_id=app.id,
            blob_key="",
            checksum=compiled.checksum,
            size=compiled.size,
            process_types=compiled.process_types,
            commit=push.commit,
            commit_description=None,
            stack=build.stack,
            buildpack_provided_description=compiled.description,
            source_key=source_key,
            created_at=now,
            updated_at=now,
        )
        db.add(slug)
        db.flush()
        slug.blob_key = f"slugs/{app.id}/{slug.id}.tgz"
        self.blobs.put(slug.blob_key, compiled.path)
        if not app.buildpacks:
            # As Heroku: the detected buildpack is saved on the app after a good build.
            app.buildpacks = list(compiled.buildpacks)
        app.buildpack_provided_description = compiled.description
        return slug

    def follow_release_phase(self, release_id: str, emit: Emit, timeout: float = 3700) -> bool:
        """Relay a pending release's release-phase output until it ends; whether it passed."""
        sent = 0
        deadline = time.monotonic() + timeout
        while True:
            with self.platform.store.session() as db:
                release = db.get(Release, release_id)
                if release is None:
                    return False
                status, output = release.status, release.output or ""
            lines = output.splitlines()
            finished = status != "pending"
            # The last line may still be growing until the phase ends.
            ready = lines if finished else lines[:-1]
            for line in ready[sent:]:
                emit(line)
            sent = max(sent, len(ready))
            if finished:
                return status == "succeeded"
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


def _tree(push: PushedCommit) -> str:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **push.git_env, "GIT_DIR": str(push.repo)}
    done = subprocess.run(
        ["git", "rev-parse", f"{push.commit}^{{tree}}"], capture_output=True, text=True, env=env
    )
    return done.stdout.strip() if done.returncode == 0 else push.commit


def _source_key(tree: str, buildpacks: list[str], job: BuildInput) -> str:
    """What decides a slug's content: the pushed tree, buildpacks, stack and config vars."""
    material = json.dumps([tree, buildpacks, job.stack, sorted(job.config.items())])
    return hashlib.sha256(material.encode()).hexdigest()


def _checkout(push: PushedCommit, target: Path) -> None:
    """The pushed tree, without history, into `target` (git archive | tar -x)."""
    target.mkdir(parents=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **push.git_env, "GIT_DIR": str(push.repo)}
    archive = subprocess.Popen(
        ["git", "archive", "--format=tar", push.commit], stdout=subprocess.PIPE, env=env
    )
    extract = subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0 or extract.returncode != 0:
        raise BuildFailed(f"Could not check out {push.commit[:7]}.")
