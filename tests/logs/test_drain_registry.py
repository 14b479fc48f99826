"""`Drains` and `DrainsPart`: drains from the store at start, added and removed by the API,
matched to the store, stopped with the server; lines really reach a receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kiku.logs.drains import DrainsPart
from kiku.platform import Platform
from kiku.settings import Settings
from kiku.store.models import App, LogDrain
from kikutest import FakeClock, bearer, login, signup
from logs.receivers import (
    SyslogReceiver,
    local_ca,
    server_context,
    threads_stopped,
    wait_until,
)


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    with threads_stopped():
        yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The operator trusts a CA of their own for drains (KIKU_DRAIN_CA_FILE), and lets
    drains reach this host (the receivers are on loopback)."""
    ca = local_ca(tmp_path / "drain-ca")
    environ = {
        "KIKU_DATA_DIR": str(tmp_path / "kiku"),
        "KIKU_DRAIN_CA_FILE": str(ca.ca_cert),
        "KIKU_DRAIN_ALLOW_PRIVATE": "1",
    }
    return Settings.from_env(environ)


@pytest.fixture
def owner(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    headers = bearer(login(api, signup(platform, "owner@example.com"), clock))
    assert api.post("/apps", headers=headers, json={"name": "shop"}).status_code == 201
    return headers


def app_id(api: TestClient, owner: dict[str, str]) -> str:
    identity: str = api.get("/apps/shop", headers=owner).json()["id"]
    return identity


def messages(receiver: SyslogReceiver) -> list[str]:
    return [m.split(" - - ", 1)[1] for m in receiver.text()]


def test_drains_added_and_removed_through_the_api_start_and_stop(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    shop = app_id(api, owner)
    with SyslogReceiver() as receiver:
        platform.drains.start()
        url = f"syslog://127.0.0.1:{receiver.port}"
        made = api.post("/apps/shop/log-drains", headers=owner, json={"url": url}).json()
        platform.logplex.publish(shop, "app", "web.1", "hello drain")
        wait_until(lambda: "hello drain" in messages(receiver), what="the line")
        assert receiver.text()[-1].split(" ")[2] == made["token"]  # HOSTNAME: the token

        api.delete(f"/apps/shop/log-drains/{made['id']}", headers=owner)
        assert platform.drains.drain(made["id"]) is None
        platform.logplex.publish(shop, "app", "web.1", "after removal")
        platform.drains.stop()
        assert "after removal" not in messages(receiver)


def test_start_loads_the_stores_drains_and_stop_flushes(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    shop = app_id(api, owner)
    with SyslogReceiver() as receiver:
        url = f"syslog://127.0.0.1:{receiver.port}"
        made = api.post("/apps/shop/log-drains", headers=owner, json={"url": url}).json()
        assert platform.drains.drain(made["id"]) is None  # not started: the API only records
        platform.drains.start()
        assert platform.drains.drain(made["id"]) is not None
        for n in range(200):
            platform.logplex.publish(shop, "app", "web.1", f"line {n}")
        platform.drains.stop()
        receiver.wait_for(200)  # delivered before stop() returned; maybe still in flight
        assert messages(receiver) == [f"line {n}" for n in range(200)]


def test_reconcile_follows_the_store(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    shop = app_id(api, owner)
    with SyslogReceiver() as receiver:
        platform.drains.start()
        with platform.store.session() as db:
            row = LogDrain(app_id=shop, url=f"syslog://127.0.0.1:{receiver.port}", token="d.x1")
            db.add(row)
        platform.drains.reconcile()  # another process added it
        drain_id = row.id
        assert platform.drains.drain(drain_id) is not None
        with platform.store.session() as db:
            db.delete(db.get_one(App, shop))  # the app is destroyed, its drains with it
        platform.drains.reconcile()
        assert platform.drains.drain(drain_id) is None
        platform.drains.stop()


def test_reconcile_leaves_drains_the_api_just_touched(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    with SyslogReceiver() as receiver:
        platform.drains.start()
        url = f"syslog://127.0.0.1:{receiver.port}"
        made = api.post("/apps/shop/log-drains", headers=owner, json={"url": url}).json()
        with platform.store.session() as db:  # as if a reconcile had read before the commit
            db.delete(db.get_one(LogDrain, made["id"]))
        platform.drains.reconcile()
        assert platform.drains.drain(made["id"]) is not None
        platform.drains.stop()


def test_the_part_starts_reconciles_and_stops_the_drains(
    api: TestClient, owner: dict[str, str], platform: Platform
) -> None:
    shop = app_id(api, owner)
    with SyslogReceiver() as receiver:
        url = f"syslog://127.0.0.1:{receiver.port}"
        made = api.post("/apps/shop/log-drains", headers=owner, json={"url": url}).json()

        async def serve() -> None:
            part = DrainsPart(platform.drains, every=0.05)
            task = asyncio.create_task(part.run())
            for _ in range(200):
                if platform.drains.drain(made["id"]) is not None:
                    break
                await asyncio.sleep(0.01)
            platform.logplex.publish(shop, "app", "web.1", "through the part")
            part.stop()
            await asyncio.wait_for(task, 10)

        asyncio.run(serve())
        receiver.wait_for(1)
        assert messages(receiver) == ["through the part"]
        assert platform.drains.drain(made["id"]) is None


def test_tls_drains_trust_the_operators_ca(
    api: TestClient, owner: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    shop = app_id(api, owner)
    context = server_context(local_ca(tmp_path / "drain-ca"))
    with SyslogReceiver(tls=context) as receiver:
        platform.drains.start()
        url = f"syslog+tls://localhost:{receiver.port}"
        api.post("/apps/shop/log-drains", headers=owner, json={"url": url})
        platform.logplex.publish(shop, "app", "web.1", "over TLS")
        receiver.wait_for(2)
        platform.drains.stop()
        assert messages(receiver) == [f"Add drain {url} by user owner@example.com", "over TLS"]
        assert not [line for line in platform.logplex.history(shop, 100) if "L14" in line.message]
