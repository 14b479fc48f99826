"""Labs preboot: a replacement web dyno takes traffic (its row, which the route feed reads)
before the old one is stopped."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from dynos.test_manager import WEB, Probe, SettlingManager, deploy, scale
from kiku.dynos.backends.fake import FakeBackend
from kiku.dynos.manager import DynoManager
from kiku.platform import Platform
from kiku.store.models import App, Dyno
from kikutest import FakeClock


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def manager(
    platform: Platform, backend: FakeBackend, clock: FakeClock, probe: Probe
) -> Iterator[DynoManager]:
    yield SettlingManager(
        platform.store,
        backend,
        platform.blobs,
        clock=clock,
        wall=clock,
        probe=probe,
        events=lambda app, process, text: None,
    )


@pytest.fixture
def app_id(platform: Platform) -> str:
    owner = platform.accounts.create_user("dev@example.com", "long enough password").user
    with platform.store.session() as db:
        app = platform.apps.create(db, db.merge(owner), "preboot")
        app.features = ["preboot"]
        return app.id


def web_rows(platform: Platform) -> list[tuple[str, str, int | None]]:
    """(dyno id, state, release version) of each web row: what routers are fed."""
    with platform.store.session() as db:
        query = select(Dyno).where(Dyno.type == "web").order_by(Dyno.name)
        return [(d.id, d.state, d.release_version) for d in db.scalars(query)]


def running(backend: FakeBackend) -> list[str]:
    return [d.spec.dyno_id for d in backend.dynos.values() if d.status.running and not d.removed]


def up_on_a(platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend) -> str:
    deploy(platform, app_id, {"web": WEB["web"]}, "a")
    manager.reconcile()
    manager.reconcile()
    ((old, state, _),) = web_rows(platform)
    assert state == "up"
    return old


def test_the_old_dyno_serves_until_its_replacement_is_up(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, probe: Probe
) -> None:
    old = up_on_a(platform, app_id, manager, backend)
    deploy(platform, app_id, {"web": WEB["web"]}, "b")
    probe.bound = False  # the new dyno boots slowly
    manager.reconcile()
    assert ("stop", "web.1") not in backend.calls
    assert len(running(backend)) == 2
    assert web_rows(platform) == [(old, "up", 2)]  # routed: still the old one
    manager.reconcile()
    assert web_rows(platform) == [(old, "up", 2)]
    probe.bound = True
    manager.reconcile()  # new one up: it takes the row (and traffic), the old one stops
    ((new, state, version),) = web_rows(platform)
    assert (state, version) == ("up", 3) and new != old
    assert ("stop", "web.1") in backend.calls
    assert running(backend) == [new]


def test_restart_and_config_change_preboot_too(
    platform: Platform,
    app_id: str,
    manager: DynoManager,
    backend: FakeBackend,
    probe: Probe,
    clock: FakeClock,
) -> None:
    old = up_on_a(platform, app_id, manager, backend)
    clock.advance(5)
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        platform.apps.releases.formations.request_restart(db, app)
    probe.bound = False
    manager.reconcile()
    assert web_rows(platform)[0][:2] == (old, "up") and len(running(backend)) == 2
    probe.bound = True
    manager.reconcile()
    assert web_rows(platform)[0][0] != old and len(running(backend)) == 1


def test_a_crashing_replacement_leaves_the_old_dyno_serving(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, probe: Probe
) -> None:
    old = up_on_a(platform, app_id, manager, backend)
    deploy(platform, app_id, {"web": WEB["web"]}, "b")
    probe.bound = False
    manager.reconcile()
    new = next(d for d in running(backend) if d != old)
    backend.dynos[new].status = type(backend.dynos[new].status)(running=False, exit_code=1)
    manager.reconcile()  # crashed, restarted at once (first crash): old still routed
    assert web_rows(platform)[0][:2] == (old, "up")
    assert old in running(backend)
    probe.bound = True
    manager.reconcile()
    manager.reconcile()
    assert web_rows(platform)[0][1] == "up" and running(backend) == [web_rows(platform)[0][0]]


def test_scaling_down_while_prebooting_stops_both(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, probe: Probe
) -> None:
    up_on_a(platform, app_id, manager, backend)
    deploy(platform, app_id, {"web": WEB["web"]}, "b")
    probe.bound = False
    manager.reconcile()
    scale(platform, app_id, web=0)
    manager.reconcile()
    assert running(backend) == [] and web_rows(platform) == []


def test_without_preboot_the_old_dyno_goes_at_once(
    platform: Platform, app_id: str, manager: DynoManager, backend: FakeBackend, probe: Probe
) -> None:
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        app.features = []
    old = up_on_a(platform, app_id, manager, backend)
    deploy(platform, app_id, {"web": WEB["web"]}, "b")
    probe.bound = False
    manager.reconcile()
    ((new, state, _),) = web_rows(platform)
    assert new != old and state == "starting"  # routers hold requests until it is up
    assert running(backend) == [new]
