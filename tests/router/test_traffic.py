"""Traffic rules: session affinity, the app's own error and maintenance pages, and the
per-app limits H11 (backlog too deep), H22 (connection limit) and H28 (idle client)."""

from __future__ import annotations

import asyncio
import dataclasses

from router.routerkit import FAST, Dyno, route, run, stack, teardown


def cookie(response) -> str | None:  # type: ignore[no-untyped-def]
    value = response.header("Set-Cookie")
    if value is None:
        return None
    assert value.startswith("heroku-session-affinity=") and "HttpOnly" in value, value
    return str(value.split(";")[0])


@run
async def test_session_affinity_pins_a_client_to_a_dyno_while_it_is_up() -> None:
    d1, d2, d3 = [await Dyno(f"web.{i}").start() for i in (1, 2, 3)]
    backends = (d1.backend, d2.backend, d3.backend)
    s = await stack(routes={"app.localhost": route("app", *backends, affinity=True)})
    c = await s.client()
    first = await c.get()
    pin = cookie(first)
    assert pin is not None
    home = next(d for d in (d1, d2, d3) if d.seen)
    for _ in range(6):
        again = await c.get(headers=f"Cookie: a=1; {pin}; b=2\r\n")
        assert again.status == 200 and cookie(again) is None  # pinned: no new cookie
    assert len(home.seen) == 7 and sum(len(d.seen) for d in (d1, d2, d3)) == 7
    assert home.seen[-1].header("Cookie") == f"a=1; {pin}; b=2"  # the app still sees it

    others = tuple(d.backend for d in (d1, d2, d3) if d is not home)
    await s.routes({"app.localhost": route("app", *others, affinity=True)})  # its dyno went
    moved = await c.get(headers=f"Cookie: {pin}\r\n")
    assert moved.status == 200
    new_pin = cookie(moved)
    assert new_pin is not None and new_pin != pin  # re-pinned to another dyno
    c.close()
    await teardown(s, d1, d2, d3)


@run
async def test_without_the_feature_no_cookie_and_round_robin() -> None:
    d1, d2 = await Dyno("web.1").start(), await Dyno("web.2").start()
    s = await stack(routes={"app.localhost": route("app", d1.backend, d2.backend)})
    c = await s.client()
    for _ in range(4):
        assert cookie(await c.get(headers="Cookie: heroku-session-affinity=x\r\n")) is None
    assert len(d1.seen) == len(d2.seen) == 2
    c.close()
    await teardown(s, d1, d2)


@run
async def test_custom_error_and_maintenance_pages_in_an_iframe() -> None:
    pages = {
        "error_page_url": "https://pages.example.com/error.html",
        "maintenance_page_url": "//pages.example.com/maintenance.html?a=1&b=2",
    }
    s = await stack(
        routes={
            "down.localhost": route("down", state="crashed", **pages),
            "away.localhost": route("away", state="up", maintenance=True, **pages),
            "odd.localhost": route("odd", state="crashed", error_page_url="javascript:x"),
        }
    )
    c = await s.client()
    crashed = await c.get(host="down.localhost")
    assert crashed.status == 503
    assert b'<iframe src="https://pages.example.com/error.html"' in crashed.body
    away = await c.get(host="away.localhost")
    assert away.status == 503
    assert b'src="//pages.example.com/maintenance.html?a=1&amp;b=2"' in away.body
    odd = await c.get(host="odd.localhost")  # not an http(s) URL: kiku's own page
    assert odd.status == 503 and b"iframe" not in odd.body and b"Application error" in odd.body
    lines = await s.wait_log(3)
    assert "code=H10" in lines[0] and "code=H80" in lines[1]
    missing = await c.get(host="nope.localhost")  # no app: never a custom page
    assert missing.status == 404 and b"iframe" not in missing.body
    c.close()
    await teardown(s)


@run
async def test_backlog_too_deep_h11() -> None:
    async def slow(seen, r, w):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.4)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    d = await Dyno(handler=slow).start()
    config = dataclasses.replace(FAST, backlog_per_dyno=2, first_byte_timeout=2.0)
    s = await stack(config, routes={"app.localhost": route("app", d.backend)})
    clients = [await s.client() for _ in range(3)]
    busy = [asyncio.ensure_future(c.get()) for c in clients[:2]]
    await asyncio.sleep(0.1)
    refused = await clients[2].get()  # answered at once, not queued
    assert refused.status == 503
    assert [r.status for r in await asyncio.gather(*busy)] == [200, 200]
    assert (await clients[2].get()).status == 200  # room again
    lines = await s.wait_log(4)
    assert any('at=error code=H11 desc="Backlog too deep"' in line for line in lines)
    assert s.router.counts.backlog("id-app") == 0
    for c in clients:
        c.close()
    await teardown(s, d)


@run
async def test_connection_limit_h22() -> None:
    d = await Dyno().start()
    config = dataclasses.replace(FAST, max_app_connections=2)
    s = await stack(config, routes={"app.localhost": route("app", d.backend)})
    c1, c2, c3 = [await s.client() for _ in range(3)]
    assert (await c1.get()).status == 200
    assert (await c2.get()).status == 200
    refused = await c3.get()
    assert refused.status == 503 and refused.header("Connection") == "close"
    assert await c3.closed()
    line = (await s.wait_log(3))[2]
    assert 'at=error code=H22 desc="Connection limit reached"' in line
    c1.close()
    for _ in range(100):
        if s.router.counts.connections("id-app") == 1:
            break
        await asyncio.sleep(0.01)
    c4 = await s.client()
    assert (await c4.get()).status == 200  # a connection went: room again
    c2.close()
    c4.close()
    await teardown(s, d)


@run
async def test_client_idle_mid_body_h28() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})  # idle window 0.5 s
    c = await s.client()
    c.send(b"POST /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 100\r\n\r\nabc")
    assert await c.closed()
    line = (await s.wait_log())[0]
    assert line.startswith('id-app at=warning code=H28 desc="Client Connection Idle" ')
    assert 'method=POST path="/upload"' in line and "status=499" in line
    assert s.router.counts.backlog("id-app") == 0
    c.close()
    await teardown(s, d)


@run
async def test_client_idle_mid_headers_h28_and_slow_but_steady_is_fine() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    c.send(b"GET /half HTTP/1.1\r\nHost: app.loc")
    assert await c.closed()
    assert "code=H28" in (await s.wait_log())[0]
    steady = await s.client()
    steady.send(b"POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 8\r\n\r\n")
    for _ in range(8):  # a byte every 0.2 s: 1.6 s in all, never 0.5 s idle
        await asyncio.sleep(0.2)
        steady.send(b"x")
    r = await steady.response()
    assert r.status == 200 and r.json()["body"] == "xxxxxxxx"
    c.close()
    steady.close()
    await teardown(s, d)
