"""Deadlines across the requests of one connection: keep-alive idle, the pooled dyno
connection's idle time, and the first-byte window of a later request (each connection has
one watchdog timer, re-armed when it fires early, instead of timers per request)."""

from __future__ import annotations

import asyncio
import dataclasses

from router.routerkit import FAST, Dyno, echo, route, run, stack, teardown


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except TimeoutError:
        return False


@run
async def test_idle_keep_alive_connection_closes_after_its_last_response() -> None:
    d = await Dyno().start()
    config = dataclasses.replace(FAST, keepalive_timeout=0.4)
    s = await stack(config, routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    assert (await c.get("/1")).status == 200
    await asyncio.sleep(0.25)
    assert (await c.get("/2")).status == 200  # within the window: the connection serves
    await asyncio.sleep(0.25)  # 0.5 s after the first response, 0.25 s after the second
    assert (await c.get("/3")).status == 200
    assert not await closed_within(c.reader, 0.2)  # not before 0.4 s idle...
    assert await closed_within(c.reader, 1.0)  # ...but then
    await teardown(s, d)


@run
async def test_pooled_dyno_connection_closes_after_backend_idle_timeout() -> None:
    d = await Dyno().start()
    config = dataclasses.replace(FAST, backend_idle_timeout=0.4)
    s = await stack(config, routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    assert (await c.get("/1")).status == 200
    await asyncio.sleep(0.25)
    assert (await c.get("/2")).status == 200
    await asyncio.sleep(0.25)
    assert (await c.get("/3")).status == 200
    assert d.connections == 1  # reused while it was idle less than 0.4 s
    await asyncio.sleep(0.2)
    assert not d.writers[0].is_closing()
    await asyncio.sleep(0.6)
    assert d.writers[0].is_closing()  # the router closed it; the next request opens one
    assert (await c.get("/4")).status == 200
    assert d.connections == 2
    c.close()
    await teardown(s, d)


@run
async def test_first_byte_window_of_a_later_request_on_the_connection() -> None:
    async def slow_second(seen, r, w):  # type: ignore[no-untyped-def]
        if seen.path == "/2":
            await asyncio.sleep(5)
            return False
        return await echo(seen, r, w)

    d = await Dyno(handler=slow_second).start()
    config = dataclasses.replace(FAST, first_byte_timeout=0.6, idle_timeout=0.9)
    s = await stack(config, routes={"app.localhost": route("app", d.backend)})
    c = await s.client()
    assert (await c.get("/1")).status == 200
    await asyncio.sleep(0.3)
    loop = asyncio.get_running_loop()
    sent = loop.time()
    r = await c.get("/2")
    waited = loop.time() - sent
    assert r.status == 503 and 0.55 <= waited < 1.2, waited
    lines = await s.wait_log(2)
    assert 'code=H12 desc="Request timeout"' in lines[1]
    c.close()
    await teardown(s, d)
