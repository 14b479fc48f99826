"""`SlugCompiler`: runs buildpacks over a checkout and packs the result as a slug.

Heroku's classic pipeline (HEROKU_BEHAVIOUR §5.1): apply `.slugignore`, pick buildpacks
(configured, else detected), `bin/compile BUILD CACHE ENV` each in order with the previous
ones' `export` sourced, `bin/release` of the last for default process types, the Procfile,
then a tar.gz of the app with its SHA-256. It emits lines; it never prints.

The buildpacks' scripts run in the build sandbox on the stack (`sandbox.py`): they see the
build at /app, the cache at /tmp/cache, the config at /tmp/env. Where the host cannot
sandbox, they run on the host and every build says so.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kiku import procfile
from kiku.build import buildpacks
from kiku.build.buildpacks import BuildpackRef
from kiku.build.limits import MemoryLimit
from kiku.build.sandbox import BuildDirs, BuildRunner, HostRunner, build_runner
from kiku.errors import KikuError

Emit = Callable[[str], None]
MB = 1024 * 1024
# Build environment entries a config var must not override (Heroku's suggested blocklist).
BLOCKED_ENV = {"PATH", "GIT_DIR", "CPATH", "CPPATH", "LD_PRELOAD", "LIBRARY_PATH"}


class BuildFailed(KikuError):
    """The build stops here; `message` is shown after ` !     ` and the push is rejected."""

    def __init__(self, message: str, *, framework: str | None = None) -> None:
        super().__init__(message)
        self.framework = framework


@dataclass(frozen=True)
class CompileLimits:
    # Heroku: 15 min compile (25 since 2026), slug 500 MB hard / 300 MB soft (§5.4).
    timeout: float = 15 * 60
    memory_bytes: int = 2048 * MB
    slug_max_bytes: int = 500 * MB
    slug_warn_bytes: int = 300 * MB


@dataclass
class BuildInput:
    app_id: str
    source_dir: Path
    commit: str
    stack: str
    buildpacks: list[str]
    config: dict[str, str]
    build_id: str


@dataclass
class CompiledSlug:
    path: Path
    checksum: str
    size: int
    process_types: dict[str, str]
    description: str | None
    buildpacks: list[str] = field(default_factory=list)


class SlugCompiler:
    def __init__(
        self,
        cache_root: Path,
        *,
        uv: Path | None = None,
        limits: CompileLimits | None = None,
        stack_dir: Path | None = None,
        runner: BuildRunner | None = None,
    ) -> None:
        self.cache_root = cache_root
        self.uv = uv
        self.limits = limits or CompileLimits()
        self.runner = runner if runner is not None else build_runner(stack_dir, uv)

    def cache_dir(self, app_id: str) -> Path:
        return self.cache_root / app_id

    def purge_cache(self, app_id: str) -> None:
        shutil.rmtree(self.cache_dir(app_id), ignore_errors=True)

    def compile(self, job: BuildInput, workdir: Path, emit: Emit) -> CompiledSlug:
        build_dir = job.source_dir
        emit(f"-----> Building on the {job.stack} stack")
        if isinstance(self.runner, HostRunner):
            emit(" !     Warning: building on the kiku host, not in the stack's sandbox:")
            emit(f" !     {self.runner.reason}.")
        apply_slugignore(build_dir)
        packs_dir = workdir / "buildpacks"
        packs_dir.mkdir()
        env_dir = self._env_dir(job, workdir)
        cache = self.cache_dir(job.app_id)
        cache.mkdir(parents=True, exist_ok=True)
        dirs = BuildDirs(build=build_dir, cache=cache, env=env_dir, buildpacks=packs_dir)
        for path in (build_dir, cache, env_dir, packs_dir):
            self.runner.own(path)
        chosen = self._choose(job, dirs, emit)
        env = self._base_env(job, dirs)
        framework = chosen[-1][1]
        for pack, _name in chosen:
            self._compile_one(pack, dirs, env, job, emit, framework)
            env = self._with_export(pack, dirs, env)
        process_types = self._process_types(chosen[-1][0], dirs, env, emit, framework)
        slug = self._pack(build_dir, workdir, emit)
        return CompiledSlug(
            path=slug[0],
            checksum=slug[1],
            size=slug[2],
            process_types=process_types,
            description=framework,
            buildpacks=[pack.reference for pack, _ in chosen],
        )

    # -- buildpacks ------------------------------------------------------------------------

    def _choose(
        self, job: BuildInput, dirs: BuildDirs, emit: Emit
    ) -> list[tuple[BuildpackRef, str]]:
        if job.buildpacks:
            chosen = []
            for reference in job.buildpacks:
                pack = self._fetch(reference, dirs)
                name = self._detect(pack, dirs)
                if name is None:
                    raise BuildFailed(f"App not compatible with buildpack: {reference}")
                emit(f"-----> {name} app detected")
                chosen.append((pack, name))
            return chosen
        emit("-----> Determining which buildpack to use for this app")
        for reference in buildpacks.DETECTION_ORDER:
            pack = self._fetch(reference, dirs)
            name = self._detect(pack, dirs)
            if name is not None:
                emit(f"-----> {name} app detected")
                return [(pack, name)]
        raise BuildFailed(
            "No default language could be detected for this app.\n"
            "       HINT: This occurs when kiku cannot detect the buildpack to use for this "
            "application automatically.\n"
            "       Add a Procfile, or set a buildpack with `kiku buildpacks:set`."
        )

    def _fetch(self, reference: str, dirs: BuildDirs) -> BuildpackRef:
        pack = buildpacks.fetch(reference, dirs.buildpacks)
        self.runner.own(pack.directory)  # buildpacks may write into their own dir
        return pack

    def _detect(self, pack: BuildpackRef, dirs: BuildDirs) -> str | None:
        detect = pack.directory / "bin" / "detect"
        if not detect.exists():
            return None
        inside = [self.runner.path(dirs, detect), self.runner.path(dirs, dirs.build)]
        command = self.runner.command(dirs, inside)
        done = subprocess.run(
            command.argv,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            preexec_fn=command.preexec,
        )
        if done.returncode != 0:
            return None
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "App"

    def _env_dir(self, job: BuildInput, workdir: Path) -> Path:
        env_dir = workdir / "env"
        env_dir.mkdir()
        for key, value in job.config.items():
            (env_dir / key).write_text(value)
        return env_dir

    def _base_env(self, job: BuildInput, dirs: BuildDirs) -> dict[str, str]:
        # A clean environment: nothing of the platform's own (tokens, database URLs) leaks in.
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.runner.path(dirs, dirs.build),
            "LANG": "C.UTF-8",
            "STACK": job.stack,
            "SOURCE_VERSION": job.commit,
            "REQUEST_ID": job.build_id,
            "BUILDPACK_LOG_FILE": "/dev/null",
            "DYNO": "build.1",
        }
        if self.uv is not None:
            env["KIKU_UV"] = self.runner.uv(self.uv)
        return env

    def _compile_one(
        self,
        pack: BuildpackRef,
        dirs: BuildDirs,
        env: dict[str, str],
        job: BuildInput,
        emit: Emit,
        framework: str,
    ) -> None:
        inside = [pack.directory / "bin" / "compile", dirs.build, dirs.cache, dirs.env]
        command = self.runner.command(dirs, [self.runner.path(dirs, path) for path in inside])
        limit = MemoryLimit(f"build-{job.build_id}", self.limits.memory_bytes)

        def enter() -> None:  # in the child, before exec: the cgroup, then the sandbox
            limit.enter()
            command.preexec()

        try:
            code = run_streaming(command.argv, env, dirs.build, emit, self.limits.timeout, enter)
            if limit.oom_killed():
                raise BuildFailed(
                    "Build ran out of memory and was killed (limit "
                    f"{self.limits.memory_bytes // MB} MB).",
                    framework=framework,
                )
        finally:
            limit.close()
        if code == TIMED_OUT:
            seconds = self.limits.timeout
            took = f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"
            raise BuildFailed(f"Build timed out after {took}.", framework=framework)
        if code != 0:
            raise BuildFailed(
                f"Push rejected, failed to compile {framework} app.", framework=framework
            )

    def _process_types(
        self, last: BuildpackRef, dirs: BuildDirs, env: dict[str, str], emit: Emit, framework: str
    ) -> dict[str, str]:
        defaults = self._release_defaults(last, dirs, env)
        emit("-----> Discovering process types")
        path = dirs.build / "Procfile"
        declared: dict[str, str] = {}
        # kiku reads the Procfile outside the sandbox: never through a link out of the app.
        if path.is_symlink() and not path.resolve().is_relative_to(dirs.build.resolve()):
            raise BuildFailed("The Procfile is a link to outside the app.", framework=framework)
        if path.exists():
            try:
                declared = procfile.parse(path.read_text(errors="replace"))
            except procfile.ProcfileError as exc:
                raise BuildFailed(exc.message, framework=framework) from exc
            emit(f"       Procfile declares types -> {', '.join(declared) or '(none)'}")
        extra = {k: v for k, v in defaults.items() if k not in declared}
        if extra:
            emit(f"       Default types for buildpack -> {', '.join(sorted(extra))}")
        return {**extra, **declared}

    def _release_defaults(
        self, pack: BuildpackRef, dirs: BuildDirs, env: dict[str, str]
    ) -> dict[str, str]:
        release = pack.directory / "bin" / "release"
        if not release.exists():
            return {}
        inside = [self.runner.path(dirs, release), self.runner.path(dirs, dirs.build)]
        command = self.runner.command(dirs, inside)
        done = subprocess.run(
            command.argv,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            preexec_fn=command.preexec,
        )
        if done.returncode != 0:
            raise BuildFailed(f"bin/release of {pack.reference} failed: {done.stderr.strip()}")
        try:
            data = yaml.safe_load(done.stdout) or {}
        except yaml.YAMLError as exc:
            raise BuildFailed(
                f"bin/release of {pack.reference} printed invalid YAML: {exc}"
            ) from exc
        types = data.get("default_process_types") or {} if isinstance(data, dict) else {}
        return {str(k): str(v) for k, v in types.items()} if isinstance(types, dict) else {}

    def _with_export(
        self, pack: BuildpackRef, dirs: BuildDirs, env: dict[str, str]
    ) -> dict[str, str]:
        """The environment after sourcing a buildpack's `export` file (for later buildpacks),
        sourced where the buildpacks run: it is the buildpack's code."""
        path = pack.directory / "export"
        if not path.exists():
            return env
        script = 'set -a; . "$1" >/dev/null; env -0'
        inside = ["bash", "-c", script, "export", self.runner.path(dirs, path)]
        command = self.runner.command(dirs, inside)
        done = subprocess.run(
            command.argv, capture_output=True, env=env, timeout=30, preexec_fn=command.preexec
        )
        if done.returncode != 0:
            return env
        pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
        return {key: value for key, value in pairs}

    # -- the slug --------------------------------------------------------------------------

    def _pack(self, build_dir: Path, workdir: Path, emit: Emit) -> tuple[Path, str, int]:
        emit("")
        emit("-----> Compressing...")
        slug = workdir / "slug.tgz"
        # Fast gzip: a slug is written once per build but read at every dyno start.
        done = subprocess.run(
            [
                "tar",
                "-C",
                str(build_dir),
                "--exclude=./.git",
                "--owner=0",
                "--group=0",
                "-I",
                "gzip -1",
                "-cf",
                str(slug),
                ".",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BuildFailed(f"Could not pack the slug: {done.stderr.strip()}")
        size = slug.stat().st_size
        emit(f"       Done: {_human(size)}")
        if size > self.limits.slug_max_bytes:
            raise BuildFailed(
                f"Compiled slug size: {_human(size)} is too large "
                f"(max is {self.limits.slug_max_bytes // MB}M)."
            )
        if size > self.limits.slug_warn_bytes:
            emit(
                f" !     Warning: Your slug size ({_human(size)}) exceeds our soft limit "
                f"({self.limits.slug_warn_bytes // MB} MB) which may affect boot time."
            )
        return slug, "SHA256:" + _sha256(slug), size


TIMED_OUT = -1000


def run_streaming(
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    emit: Emit,
    timeout: float,
    preexec: Callable[[], None] | None = None,
) -> int:
    """Run `command`, emitting each output line as it comes; TIMED_OUT if it ran too long."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so a timeout kills all of it
        preexec_fn=preexec,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    timer = _Killer(process, deadline)
    timer.start()
    for raw in process.stdout:
        emit(raw.decode(errors="replace").rstrip("\n"))
    code = process.wait()
    timer.cancel()
    return TIMED_OUT if timer.fired else code


class _Killer:
    """Kills a build's process group at its deadline."""

    def __init__(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        self.process = process
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._kill)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _kill(self) -> None:
        self.fired = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def apply_slugignore(build_dir: Path) -> None:
    """Delete what `.slugignore` lists (gitignore-like globs, `/` anchors, no `!`)."""
    ignore = build_dir / ".slugignore"
    if not ignore.exists():
        return
    patterns = [
        line.strip()
        for line in ignore.read_text(errors="replace").splitlines()
        if line.strip() and not line.strip().startswith(("#", "!"))
    ]
    for path in sorted(build_dir.rglob("*"), key=lambda p: len(p.parts)):
        if not path.exists() and not path.is_symlink():
            continue
        relative = path.relative_to(build_dir).as_posix()
        if any(_ignored(relative, pattern) for pattern in patterns):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _ignored(relative: str, pattern: str) -> bool:
    pattern = pattern.rstrip("/")
    if pattern.startswith("/"):
        return fnmatch.fnmatch(relative, pattern[1:])
    if "/" in pattern:
        return fnmatch.fnmatch(relative, pattern)
    return fnmatch.fnmatch(relative.rsplit("/", 1)[-1], pattern)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _human(size: int) -> str:
    return f"{size / MB:.1f}M"


def new_workdir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="build-", dir=root))
