"""The route table the control plane feeds to routers."""

import asyncio
import json
from pathlib import Path

from kiku.dynos.formation import Change
from kiku.platform import Platform
from kiku.routing.feed import RouteFeed, snapshot
from kiku.store.models import App, Dyno, Slug


def make_app(platform: Platform, name: str = "routed") -> str:
    owner = platform.accounts.create_user(f"{name}@example.com", "long enough password").user
    with platform.store.session() as db:
        app = platform.apps.create(db, db.merge(owner), name)
        slug = Slug(
            app_id=app.id,
            blob_key="s",
            checksum="x",
            size=1,
            process_types={"web": "serve"},
            stack="kiku-24",
        )
        db.add(slug)
        platform.apps.releases.create(db, app, description="Deploy", user=None, slug=slug)
        return app.id


def add_dyno(platform: Platform, app_id: str, name: str, state: str, port: int = 5000) -> None:
    with platform.store.session() as db:
        db.add(
            Dyno(
                app_id=app_id,
                name=name,
                type="web",
                command="serve",
                size="standard-1x",
                state=state,
                address="10.213.0.2",
                port=port,
            )
        )


def table(platform: Platform) -> dict[str, dict[str, object]]:
    routes: dict[str, dict[str, object]] = snapshot(platform.store, platform.settings.web_host)[
        "routes"
    ]
    return routes


def test_states_follow_the_web_dynos(platform: Platform) -> None:
    app_id = make_app(platform)
    assert table(platform)["routed.localhost"]["state"] == "starting"  # web=1, none yet
    add_dyno(platform, app_id, "web.1", "starting")
    assert table(platform)["routed.localhost"]["state"] == "starting"
    with platform.store.session() as db:
        db.query(Dyno).update({"state": "crashed"})
    assert table(platform)["routed.localhost"]["state"] == "crashed"
    add_dyno(platform, app_id, "web.2", "up", 5001)
    route = table(platform)["routed.localhost"]
    assert route["state"] == "up"
    assert route["backends"] == [{"dyno": "web.2", "address": "10.213.0.2", "port": 5001}]


def test_no_web_dynos_and_maintenance(platform: Platform) -> None:
    app_id = make_app(platform)
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        platform.apps.releases.formations.apply(db, app, [Change("web", 0)])
        app.maintenance = True
    route = table(platform)["routed.localhost"]
    assert route["state"] == "none" and route["maintenance"] is True


def test_feed_sends_a_snapshot_then_changes(platform: Platform, tmp_path: Path) -> None:
    app_id = make_app(platform)
    feed = RouteFeed(platform.store, tmp_path / "routes.sock", platform.settings.web_host, 0.02)

    async def scenario() -> list[dict[str, object]]:
        task = asyncio.create_task(feed.run())
        while not (tmp_path / "routes.sock").exists():
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "routes.sock"))
        first = json.loads(await reader.readline())
        await asyncio.to_thread(add_dyno, platform, app_id, "web.1", "up")
        second = json.loads(await asyncio.wait_for(reader.readline(), 5))
        writer.close()
        feed.stop()
        await task
        return [first, second]

    first, second = asyncio.run(scenario())
    assert first["routes"]["routed.localhost"]["state"] == "starting"  # type: ignore[index]
    assert second["routes"]["routed.localhost"]["state"] == "up"  # type: ignore[index]


def test_custom_domains_share_the_apps_route(platform: Platform) -> None:
    from kiku.store.models import Domain

    app_id = make_app(platform)
    add_dyno(platform, app_id, "web.1", "up")
    with platform.store.session() as db:
        db.add(Domain(app_id=app_id, hostname="www.example.com", kind="custom"))
        db.add(Domain(app_id=app_id, hostname="*.example.org", kind="custom"))
    routes = table(platform)
    assert routes["www.example.com"] == routes["routed.localhost"]
    assert routes["*.example.org"]["app_id"] == app_id


def test_custom_domains_certificates_become_0600_files(platform: Platform, tmp_path: Path) -> None:
    from certkit import TestCA
    from kiku.routing.feed import prune_cert_files
    from kiku.store.models import Domain, SniEndpoint

    app_id = make_app(platform)
    pem = TestCA().issue("*.example.com")
    with platform.store.session() as db:
        endpoint = SniEndpoint(
            app_id=app_id, name="misty-meadow-1", certificate_chain=pem.cert, private_key=pem.key
        )
        db.add(endpoint)
        db.flush()
        db.add(Domain(app_id=app_id, hostname="www.example.com", kind="custom"))
        db.add(Domain(app_id=app_id, hostname="other.net", kind="custom"))
    cert_dir = tmp_path / "sni"
    certs = snapshot(platform.store, platform.settings.web_host, cert_dir)["certs"]
    assert list(certs) == ["www.example.com"]  # covered by *.example.com; other.net is not
    path = Path(certs["www.example.com"])
    assert path.parent == cert_dir and path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == pem.cert.strip() + "\n" + pem.key.strip() + "\n"
    stale = cert_dir / "gone-0000.pem"
    stale.write_text("old")
    prune_cert_files(cert_dir, set(certs.values()))
    assert not stale.exists() and path.exists()


def test_local_ca_issues_the_routers_wildcard_certificate(tmp_path: Path) -> None:
    import ssl

    from kiku.tls import LocalCA

    ca = LocalCA(tmp_path / "tls")
    cert, key = ca.issue("router-kiku.test", ("*.kiku.test", "kiku.test"))
    assert key.stat().st_mode & 0o777 == 0o600
    assert ca.ca_key.stat().st_mode & 0o777 == 0o600
    assert ca.issue("router-kiku.test", ("*.kiku.test", "kiku.test")) == (cert, key)
    first = cert.read_bytes()
    ca.issue("router-kiku.test", ("*.kiku.test", "kiku.test"))
    assert cert.read_bytes() == first  # kept while it fits
    context = ssl.create_default_context(cafile=str(ca.ca_cert))
    context.load_cert_chain(cert, key)  # the key belongs to the certificate
    ca.ca_key.unlink()  # a data dir from before kiku kept the CA key: a new CA
    old_ca = ca.ca_cert.read_bytes()
    ca.issue("router-kiku.test", ("*.other.test", "other.test"))
    assert cert.read_bytes() != first and ca.ca_cert.read_bytes() != old_ca
    assert ca.ca_key.exists() and ca.cert.exists()


def test_affinity_and_page_urls_ride_on_the_route(platform: Platform) -> None:
    app_id = make_app(platform)
    assert "affinity" not in table(platform)["routed.localhost"]
    with platform.store.session() as db:
        app = db.get(App, app_id)
        assert app is not None
        app.features = ["http-session-affinity"]
        app.config = {
            "ERROR_PAGE_URL": "https://example.com/error.html",
            "MAINTENANCE_PAGE_URL": "//example.com/down.html",
        }
    route = table(platform)["routed.localhost"]
    assert route["affinity"] is True
    assert route["error_page_url"] == "https://example.com/error.html"
    assert route["maintenance_page_url"] == "//example.com/down.html"
