"""The dyno manager's moves, with a fake backend and a clock the tests move."""

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from kiku.dynos.backends.fake import FakeBackend
from kiku.dynos.formation import Change
from kiku.dynos.manager import DynoManager
from kiku.platform import Platform
from kiku.store.models import App, Dyno, Slug
from kikutest import FakeClock


class SettlingManager(DynoManager):
    """Each pass also waits for the stops it sent off, so a test can look at the result."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drain_seconds = 0.0

    def reconcile(self) -> None:
        super().reconcile()
        self.wait_for_stops()


class Probe:
    def __init__(self) -> None:
        self.bound = True

    def __call__(self, address: str, port: int) -> bool:
        return self.bound


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def manager(
    platform: Platform, backend: FakeBackend, clock: FakeClock, events: list[str], probe: Probe
) -> Iterator[DynoManager]:
    yield SettlingManager(
        platform.store,
        backend,
        platform.blobs,
        clock=clock,
        wall=clock,
        probe=probe,
        events=lambda app, process, text: events.append(f"{process}: {text}"),
    )


@pytest.fixture
def app_id(platform: Platform) -> str:
    owner = platform.accounts.create_user("dev@example.com", "long enough password").user
    with platform.store.session() as db:
        app = platform.apps.create(db, db.merge(owner), "dynos")
        return app.id


def deploy(platform: Platform, app_id: str, types: dict[str, str], tag: str = "a") -> None:
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        slug = Slug(
            app_id=app_id,
            blob_key=f"slugs/{tag}.tgz",
            checksum="SHA256:0",
            size=1,
            process_types=types,
            stack="kiku-24",
        )
        db.add(slug)
        platform.apps.releases.create(db, app, description=f"Deploy {tag}", user=None, slug=slug)


def scale(platform: Platform, app_id: str, **quantities: int) -> None:
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        changes = [Change(kind, quantity) for kind, quantity in quantities.items()]
        platform.apps.releases.formations.apply(db, app, changes)


def rows(platform: Platform) -> dict[str, str]:
    with platform.store.session() as db:
        return {d.name: d.state for d in db.scalars(select(Dyno))}


WEB = {"web": "gunicorn app:app", "worker": "python worker.py"}


def test_first_release_starts_web_then_it_comes_up(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, events: list[str]
) -> None:
    manager.reconcile()
    assert backend.calls == []  # nothing released yet
    deploy(platform, app_id, WEB)
    manager.reconcile()
    assert backend.calls == [("start", "web.1")]
    assert rows(platform) == {"web.1": "starting"}
    started = backend.live()["web.1"].spec
    assert started.env["PORT"] == "5000" and started.env["DYNO"] == "web.1"
    assert started.memory_mb == 1024  # twice Standard-1X's 512 MB: R15 at 2x
    manager.reconcile()
    assert rows(platform) == {"web.1": "up"}
    assert "web.1: State changed from starting to up" in events


def test_scaling_up_and_down(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend
) -> None:
    deploy(platform, app_id, WEB)
    scale(platform, app_id, worker=2)
    manager.reconcile()
    manager.reconcile()
    assert rows(platform) == {"web.1": "up", "worker.1": "up", "worker.2": "up"}
    assert "PORT" not in backend.live()["worker.1"].spec.env
    scale(platform, app_id, worker=0, web=0)
    manager.reconcile()
    assert rows(platform) == {}
    assert backend.live() == {}


def test_crash_restarts_at_once_then_cools_off(
    platform: Platform,
    app_id: str,
    manager: DynoManager,
    backend: FakeBackend,
    clock: FakeClock,
    events: list[str],
) -> None:
    deploy(platform, app_id, WEB)
    manager.reconcile()
    manager.reconcile()
    backend.exit("web.1", 1)
    manager.reconcile()
    assert rows(platform) == {"web.1": "crashed"}
    assert "web.1: Process exited with status 1" in events
    manager.reconcile()  # first crash: restarted immediately
    assert rows(platform) == {"web.1": "starting"}
    manager.reconcile()
    backend.exit("web.1", 1)
    manager.reconcile()
    manager.reconcile()
    assert rows(platform) == {"web.1": "crashed"}  # second crash: a 20 minute cool-off
    clock.advance(19 * 60)
    manager.reconcile()
    assert rows(platform) == {"web.1": "crashed"}
    clock.advance(61)
    manager.reconcile()
    assert rows(platform) == {"web.1": "starting"}


def test_boot_timeout_is_r10(
    platform: Platform,
    app_id: str,
    manager: DynoManager,
    probe: Probe,
    clock: FakeClock,
    events: list[str],
) -> None:
    probe.bound = False
    deploy(platform, app_id, WEB)
    manager.reconcile()
    clock.advance(30)
    manager.reconcile()
    assert rows(platform) == {"web.1": "starting"}
    clock.advance(31)
    manager.reconcile()
    assert rows(platform) == {"web.1": "crashed"}
    assert any("Error R10 (Boot timeout)" in e for e in events)


def test_new_release_replaces_the_formation(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend
) -> None:
    deploy(platform, app_id, WEB, "a")
    manager.reconcile()
    first = backend.live()["web.1"].spec
    deploy(platform, app_id, WEB, "b")
    manager.reconcile()
    second = backend.live()["web.1"].spec
    assert second.dyno_id != first.dyno_id
    assert second.release_version == first.release_version + 1
    assert ("stop", "web.1") in backend.calls
    assert len(rows(platform)) == 1


def test_restart_requests_replace_dynos(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, clock: FakeClock
) -> None:
    deploy(platform, app_id, WEB)
    manager.reconcile()
    before = backend.live()["web.1"].spec.dyno_id
    clock.advance(5)
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        platform.apps.releases.formations.request_restart(db, app)
    manager.reconcile()
    after = backend.live()["web.1"].spec.dyno_id
    assert after != before
    with platform.store.session() as db:
        db.scalars(select(Dyno)).one().restart_requested = True
    manager.reconcile()
    assert backend.live()["web.1"].spec.dyno_id != after


def test_memory_over_quota_is_r14_and_oom_is_r15(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, events: list[str]
) -> None:
    deploy(platform, app_id, WEB)
    manager.reconcile()
    manager.reconcile()
    backend.set_memory("web.1", 600 * 2**20, 1024 * 2**20)
    manager.reconcile()
    assert "web.1: Error R14 (Memory quota exceeded)" in events
    assert "web.1: Process running mem=600MB(117.2%)" in events
    backend.exit("web.1", 137, oom=True)
    manager.reconcile()
    assert "web.1: Error R15 (Memory quota vastly exceeded)" in events


def test_a_new_manager_adopts_running_dynos_without_restarting_them(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, clock: FakeClock
) -> None:
    deploy(platform, app_id, WEB)
    scale(platform, app_id, worker=1)
    manager.reconcile()
    manager.reconcile()
    starts = [c for c in backend.calls if c[0] == "start"]
    successor = SettlingManager(
        platform.store,
        backend,
        platform.blobs,
        clock=clock,
        wall=clock,
        probe=lambda a, p: True,
        events=lambda *a: None,
    )
    successor.adopt()
    successor.reconcile()
    assert [c for c in backend.calls if c[0] == "start"] == starts
    assert rows(platform) == {"web.1": "up", "worker.1": "up"}


def wait_release_phases(manager: DynoManager) -> None:
    for thread in list(manager._release_phases.values()):
        thread.join(timeout=10)


def statuses(platform: Platform) -> list[tuple[int, str]]:
    from kiku.store.models import Release

    with platform.store.session() as db:
        return [
            (r.version, r.status) for r in db.scalars(select(Release).order_by(Release.version))
        ]


def test_release_phase_gates_the_new_release(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend
) -> None:
    deploy(platform, app_id, WEB, "a")
    manager.reconcile()
    first = backend.live()["web.1"].spec.release_version
    backend.one_off_output = b"Migrating...\ndone\n"
    deploy(platform, app_id, {**WEB, "release": "./migrate"}, "b")
    assert statuses(platform)[-1] == (3, "pending")
    manager.reconcile()
    wait_release_phases(manager)
    assert backend.live()["web.1"].spec.release_version == first  # not moved while pending
    [release_dyno] = [d.spec for d in backend.dynos.values() if d.spec.name.startswith("release.")]
    assert release_dyno.command == "./migrate" and release_dyno.attach
    assert statuses(platform)[-1] == (3, "succeeded")
    manager.reconcile()
    assert backend.live()["web.1"].spec.release_version == 3
    from kiku.store.models import Release

    with platform.store.session() as db:
        output = db.scalars(select(Release).where(Release.version == 3)).one().output
    assert output == "Migrating...\ndone\n"


def test_failed_release_phase_keeps_the_current_release(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend
) -> None:
    deploy(platform, app_id, WEB, "a")
    manager.reconcile()
    backend.one_off_exit = 1
    deploy(platform, app_id, {**WEB, "release": "./migrate"}, "b")
    manager.reconcile()
    wait_release_phases(manager)
    manager.reconcile()
    assert statuses(platform)[-1] == (3, "failed")
    assert backend.live()["web.1"].spec.release_version == 2


def test_daily_cycling_after_24_hours_and_its_jitter(
    platform: Platform, app_id: str, backend: FakeBackend, clock: FakeClock, events: list[str]
) -> None:
    manager = SettlingManager(
        platform.store,
        backend,
        platform.blobs,
        clock=clock,
        wall=clock,
        probe=lambda a, p: True,
        events=lambda app, p, t: events.append(f"{p}: {t}"),
        jitter=lambda: 0.5,
    )
    deploy(platform, app_id, WEB)
    manager.reconcile()
    first = backend.live()["web.1"].spec.dyno_id
    clock.advance(24 * 3600 + 107 * 60)  # 24 h plus half of the 216 minute jitter, minus 1 min
    manager.reconcile()
    assert backend.live()["web.1"].spec.dyno_id == first
    clock.advance(2 * 60)
    manager.reconcile()
    assert backend.live()["web.1"].spec.dyno_id != first
    assert "web.1: Cycling" in events


def test_a_process_ignoring_sigterm_is_r12(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, events: list[str]
) -> None:
    deploy(platform, app_id, WEB)
    manager.reconcile()
    original_stop = backend.stop

    def stubborn(handle, grace):  # type: ignore[no-untyped-def]
        original_stop(handle, grace)
        backend.dynos[handle.dyno_id].status = type(backend.dynos[handle.dyno_id].status)(
            running=False, exit_code=137
        )

    backend.stop = stubborn  # type: ignore[method-assign]
    scale(platform, app_id, web=0)
    manager.reconcile()
    assert any("Error R12 (Exit timeout)" in e for e in events)
    assert "web.1: Process exited with status 137" in events


def test_dyno_metadata_comes_with_the_next_release_after_enabling(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend
) -> None:
    deploy(platform, app_id, WEB, "a")
    manager.reconcile()
    assert "HEROKU_APP_ID" not in backend.live()["web.1"].spec.env
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        app.features = ["runtime-dyno-metadata"]
    manager.reconcile()
    assert "HEROKU_APP_ID" not in backend.live()["web.1"].spec.env  # from the next release on
    deploy(platform, app_id, WEB, "b")
    manager.reconcile()
    spec = backend.live()["web.1"].spec
    assert spec.env["HEROKU_APP_ID"] == app_id
    assert spec.env["HEROKU_APP_NAME"] == "dynos"
    assert spec.env["HEROKU_RELEASE_VERSION"] == "v3"
    assert spec.env["HEROKU_SLUG_DESCRIPTION"] == "Deploy b"
    assert spec.env["HEROKU_DYNO_ID"] == spec.dyno_id
