"""Routing by host, round-robin, forwarded headers, request ids, hop-by-hop headers."""

from __future__ import annotations

import re

from router.routerkit import Dyno, route, run, stack, teardown


@run
async def test_routes_by_host_with_port_stripped_and_case_folded() -> None:
    a, b = await Dyno("web.1").start(), await Dyno("web.1").start()
    s = await stack(
        routes={"a.localhost": route("a", a.backend), "b.localhost": route("b", b.backend)}
    )
    c = await s.client()
    r = await c.get("/x?y=1", host="B.Localhost:8080")
    assert r.status == 200
    assert r.json()["path"] == "/x?y=1"
    assert len(b.seen) == 1 and not a.seen
    c.close()
    await teardown(s, a, b)


@run
async def test_unknown_host_is_404_no_such_app() -> None:
    s = await stack(routes={})
    c = await s.client()
    r = await c.get(host="nope.localhost")
    assert r.status == 404
    assert b"no app configured" in r.body
    assert r.header("X-Request-Id")
    c.close()
    await teardown(s)


@run
async def test_round_robin_across_two_backends() -> None:
    d1, d2 = await Dyno("web.1").start(), await Dyno("web.2").start()
    s = await stack(routes={"app.localhost": route("app", d1.backend, d2.backend)})
    c = await s.client()
    for _ in range(4):
        assert (await c.get()).status == 200
    assert len(d1.seen) == 2 and len(d2.seen) == 2
    lines = await s.wait_log(4)
    assert {re.search(r"dyno=(\S+)", line).group(1) for line in lines} == {"web.1", "web.2"}  # type: ignore[union-attr]
    c.close()
    await teardown(s, d1, d2)


@run
async def test_forwarded_headers_added() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    r = await c.get(
        headers="X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Port: 443\r\nVia: 1.0 corp\r\n"
    )
    seen = d.seen[0]
    assert seen.header("X-Forwarded-For") == "1.2.3.4, 127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("X-Forwarded-Port") == str(s.port)
    assert seen.header("Via") == "1.0 corp, 1.1 kiku"
    start = int(seen.header("X-Request-Start") or 0)
    assert 1_600_000_000_000 < start < 10_000_000_000_000
    assert [k for k, _ in seen.headers if k.lower() == "x-forwarded-proto"] == ["X-Forwarded-Proto"]
    rid = seen.header("X-Request-Id")
    assert rid and re.fullmatch(r"[0-9a-f-]{36}", rid)
    assert r.header("X-Request-Id") == rid
    c.close()
    await teardown(s, d)


@run
async def test_request_id_kept_only_when_valid() -> None:
    d = await Dyno().start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    good = "abcDEF0123456789+/=-xyz"
    r = await c.get(headers=f"X-Request-Id: {good}\r\n")
    assert d.seen[0].header("X-Request-Id") == good and r.header("X-Request-Id") == good
    for bad in ["short", "x" * 201, "has spaces in it but is long enough"]:
        r = await c.get(headers=f"X-Request-Id: {bad}\r\n")
        assert d.seen[-1].header("X-Request-Id") != bad
        assert len(d.seen[-1].header("X-Request-Id") or "") == 36
    lines = await s.wait_log(4)
    assert f"request_id={good} " in lines[0]
    c.close()
    await teardown(s, d)


@run
async def test_hop_by_hop_headers_stripped_both_ways() -> None:
    async def handler(seen, _r, w):  # type: ignore[no-untyped-def]
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Secret\r\nX-Secret: 1\r\n"
            b"Keep-Alive: timeout=5\r\nProxy-Thing: y\r\nTrailer: Foo\r\nX-Kept: yes\r\n\r\nok"
        )
        return True

    d = await Dyno(handler=handler).start()
    s = await stack(routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    r = await c.get(
        headers="Connection: keep-alive, X-Private\r\nX-Private: p\r\nKeep-Alive: 300\r\n"
        "Proxy-Authorization: Basic x\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Normal: n\r\n"
    )
    names = {k.lower() for k, _ in d.seen[0].headers}
    assert not names & {
        "connection",
        "x-private",
        "keep-alive",
        "proxy-authorization",
        "te",
        "upgrade",
    }
    assert "x-normal" in names
    rnames = {k.lower() for k, _ in r.headers}
    assert not rnames & {"x-secret", "keep-alive", "proxy-thing", "trailer", "connection"}
    assert r.header("X-Kept") == "yes" and r.body == b"ok"
    c.close()
    await teardown(s, d)


@run
async def test_custom_and_wildcard_domains() -> None:
    d = await Dyno("web.1").start()
    r = route("app", d.backend)
    s = await stack(routes={"app.localhost": r, "www.example.com": r, "*.example.org": r})
    c = await s.client()
    assert (await c.get(host="www.example.com")).status == 200
    assert (await c.get(host="shop.example.org")).status == 200
    assert (await c.get(host="example.org")).status == 404  # a wildcard is one label deeper
    assert (await c.get(host="a.b.example.org")).status == 404
    assert len(d.seen) == 2
    c.close()
    await teardown(s, d)
