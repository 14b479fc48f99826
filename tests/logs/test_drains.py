"""Drains against real receivers: syslog over TCP and TLS, HTTPS, with a local CA."""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiku.logs.drain import Backoff, Drain, open_drain, tls_context
from kiku.logs.lines import LogLine
from kiku.logs.logplex import Logplex
from kiku.logs.sender import DeliveryFailed, check_public
from kiku.tls import LocalCA
from logs.receivers import (
    HttpsReceiver,
    SyslogReceiver,
    free_port,
    local_ca,
    server_context,
    threads_stopped,
    wait_until,
)

TOKEN = "d.0f3c6d8e-1b2a-4c5d-9e8f-7a6b5c4d3e2f"
APP = "0a1b2c3d-0000-4000-8000-000000000001"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00"
FAST = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    with threads_stopped():
        yield


@pytest.fixture
def logplex(tmp_path: Path) -> Logplex:
    return Logplex(tmp_path / "logs")


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return local_ca(tmp_path / "ca")


@pytest.fixture
def drains(logplex: Logplex) -> Iterator[list[Drain]]:
    """Drains a test opened, attached to `logplex`; all closed at the end."""
    opened: list[Drain] = []
    yield opened
    for drain in opened:
        logplex.detach(APP, drain)
        drain.close(grace=0.5)
        assert not drain.alive


def attach(logplex: Logplex, opened: list[Drain], url: str, **options: object) -> Drain:
    def announce(text: str) -> None:
        logplex.publish(APP, "heroku", "logplex", text)

    options.setdefault("private_ok", True)  # the receivers are on loopback
    drain = open_drain(url, TOKEN, announce=announce, backoff=FAST, **options)  # type: ignore[arg-type]
    opened.append(drain)
    logplex.attach(APP, drain)
    return drain


def publish_mixed(logplex: Logplex, count: int, delivered: Callable[[], int] | None = None) -> None:
    """`count` lines, app and router ones; in rounds the drain can keep up with (its buffer
    holds 1024) when `delivered` says how many arrived so far."""
    for i in range(count):
        if i % 3 == 2:
            logplex.publish(APP, "heroku", "router", f"at=info path=/{i} status=200")
        else:
            logplex.publish(APP, "app", "web.1", f"line {i} ünïcode")
        if delivered is not None and i % 500 == 499:
            wait_until(lambda: delivered() > i, what=f"{i + 1} lines delivered")  # noqa: B023


def expected_syslog(i: int, hostname: str = TOKEN, sd: str = " -") -> str:
    if i % 3 == 2:
        return f"<158>1 {TS} {hostname} heroku router -{sd} at=info path=/{i} status=200"
    return f"<190>1 {TS} {hostname} app web.1 -{sd} line {i} ünïcode"


def assert_in_order(received: list[str], count: int, hostname: str, sd: str) -> None:
    assert len(received) == count
    for i, message in enumerate(received):
        assert re.fullmatch(expected_syslog(i, hostname, sd), message), (i, message)


def l10_lines(logplex: Logplex) -> list[LogLine]:
    return [line for line in logplex.history(APP, 1500) if "Error L10" in line.message]


# -- syslog ----------------------------------------------------------------------------------


def test_syslog_receiver_gets_every_line_in_order(logplex: Logplex, drains: list[Drain]) -> None:
    with SyslogReceiver() as receiver:
        attach(logplex, drains, f"syslog://127.0.0.1:{receiver.port}")
        publish_mixed(logplex, 3000, lambda: len(receiver.messages))
        received = receiver.wait_for(3000)
        assert_in_order(received, 3000, TOKEN, " -")
        assert receiver.connections == 1


def test_frames_are_counted_in_bytes_not_characters(logplex: Logplex, drains: list[Drain]) -> None:
    with SyslogReceiver() as receiver:
        attach(logplex, drains, f"syslog://127.0.0.1:{receiver.port}")
        for message in ("héllo wörld ✓", "x" * 9000, "after"):
            logplex.publish(APP, "app", "web.1", message)
        received = receiver.wait_for(3)
        assert [m.split(" - - ", 1)[1] for m in received] == ["héllo wörld ✓", "x" * 9000, "after"]


def test_syslog_tls_receiver_gets_every_line_in_order(
    logplex: Logplex, drains: list[Drain], ca: LocalCA
) -> None:
    with SyslogReceiver(tls=server_context(ca)) as receiver:
        attach(
            logplex,
            drains,
            f"syslog+tls://localhost:{receiver.port}",
            tls=tls_context(ca.ca_cert),
        )
        publish_mixed(logplex, 2000, lambda: len(receiver.messages))
        assert_in_order(receiver.wait_for(2000), 2000, TOKEN, " -")
        assert receiver.handshake_failures == 0


def test_a_certificate_from_an_unknown_ca_gives_l14(
    logplex: Logplex, drains: list[Drain], ca: LocalCA, tmp_path: Path
) -> None:
    stranger = local_ca(tmp_path / "stranger")
    with SyslogReceiver(tls=server_context(stranger)) as receiver:
        url = f"syslog+tls://127.0.0.1:{receiver.port}"
        attach(logplex, drains, url, tls=tls_context(ca.ca_cert))
        logplex.publish(APP, "app", "web.1", "secret line")

        def l14() -> list[LogLine]:
            return [line for line in logplex.history(APP, 100) if "L14" in line.message]

        wait_until(lambda: bool(l14()), what="an L14 line")
        line = l14()[0]
        assert (line.source, line.process) == ("heroku", "logplex")
        assert line.message == (
            f'Error L14 (certificate validation): error="bad certificate" uri="{url}"'
        )
        assert receiver.messages == []


def test_an_https_drain_with_a_bad_certificate_gives_l14(
    logplex: Logplex, drains: list[Drain], ca: LocalCA, tmp_path: Path
) -> None:
    stranger = local_ca(tmp_path / "stranger")
    with HttpsReceiver(tls=server_context(stranger)) as receiver:
        url = f"https://127.0.0.1:{receiver.port}/logs"
        attach(logplex, drains, url, tls=tls_context(ca.ca_cert), retry_delay=0.01)
        logplex.publish(APP, "app", "web.1", "secret line")
        wait_until(
            lambda: any("L14" in line.message for line in logplex.history(APP, 100)),
            what="an L14 line",
        )
        assert receiver.requests == []


def test_syslog_reconnects_when_the_receiver_goes_away(
    logplex: Logplex, drains: list[Drain]
) -> None:
    port = free_port()
    with SyslogReceiver(port=port) as receiver:
        attach(logplex, drains, f"syslog://127.0.0.1:{port}")
        logplex.publish(APP, "app", "web.1", "before")
        receiver.wait_for(1)
    # Gone: nothing listens. Lines wait in the drain's buffer meanwhile.
    time.sleep(0.1)
    for i in range(5):
        logplex.publish(APP, "app", "web.1", f"while away {i}")
    time.sleep(0.3)
    with SyslogReceiver(port=port) as again:
        received = again.wait_for(5)
        assert [m.rsplit(" - ", 1)[1] for m in received] == [f"while away {i}" for i in range(5)]
        logplex.publish(APP, "app", "web.1", "after")
        assert again.wait_for(6)[-1].endswith(" after")


def test_syslog_reconnects_when_the_receiver_hangs_up(
    logplex: Logplex, drains: list[Drain]
) -> None:
    with SyslogReceiver() as receiver:
        attach(logplex, drains, f"syslog://127.0.0.1:{receiver.port}")
        logplex.publish(APP, "app", "web.1", "one")
        receiver.wait_for(1)
        receiver.hang_up()
        time.sleep(0.1)
        logplex.publish(APP, "app", "web.1", "two")
        received = receiver.wait_for(2)
        assert received[-1].endswith(" two")
        assert receiver.connections == 2


def test_close_delivers_what_is_buffered(logplex: Logplex, drains: list[Drain]) -> None:
    with SyslogReceiver() as receiver:
        drain = attach(logplex, drains, f"syslog://127.0.0.1:{receiver.port}")
        publish_mixed(logplex, 1000)
        logplex.detach(APP, drain)
        drain.close(grace=5)
        assert not drain.alive
        assert len(receiver.wait_for(1000)) == 1000


def test_close_gives_up_after_the_grace_when_nobody_listens(
    logplex: Logplex, drains: list[Drain]
) -> None:
    drain = attach(logplex, drains, f"syslog://127.0.0.1:{free_port()}")
    logplex.publish(APP, "app", "web.1", "nobody hears this")
    started = time.monotonic()
    drain.close(grace=0.3)
    assert not drain.alive
    assert time.monotonic() - started < 2


# -- HTTPS -----------------------------------------------------------------------------------


def test_https_drain_posts_logplex_batches(
    logplex: Logplex, drains: list[Drain], ca: LocalCA
) -> None:
    with HttpsReceiver(tls=server_context(ca)) as receiver:
        url = f"https://user:p%40ss@localhost:{receiver.port}/drain/in?app=shop"
        attach(logplex, drains, url, tls=tls_context(ca.ca_cert))
        publish_mixed(logplex, 2500, lambda: len(receiver.frames()))
        wait_until(lambda: len(receiver.frames()) >= 2500, what="2500 frames")
        assert_in_order(receiver.frames(), 2500, "host", "")
        for request in receiver.requests:
            headers = request.headers
            assert request.path == "/drain/in?app=shop"
            assert headers["content-type"] == "application/logplex-1"
            assert int(headers["logplex-msg-count"]) == len(request.frames)
            assert re.fullmatch(r"[0-9A-F]{32}", headers["logplex-frame-id"])
            assert headers["logplex-drain-token"] == TOKEN
            assert headers["user-agent"].startswith("Logplex/v")
            assert headers["authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
            assert len(request.body) <= 100 * 1024 + 200
        frame_ids = [r.headers["logplex-frame-id"] for r in receiver.requests]
        assert len(set(frame_ids)) == len(frame_ids)


def test_https_frames_have_no_structured_data(logplex: Logplex, drains: list[Drain]) -> None:
    with HttpsReceiver() as receiver:
        attach(logplex, drains, f"http://127.0.0.1:{receiver.port}/")
        logplex.publish(APP, "heroku", "web.3", "State changed from starting to up")
        [request] = receiver.wait_for_requests(1)
        body = request.body.decode()
        message = body.split(" ", 1)[1]
        assert re.fullmatch(  # logplex ends each message with a newline, counted
            rf"<134>1 {TS} host heroku web\.3 - State changed from starting to up\n?", message
        )
        assert int(body.split(" ", 1)[0]) == len(message.encode())


def test_https_batches_aim_at_100_kb(logplex: Logplex, drains: list[Drain]) -> None:
    with HttpsReceiver() as receiver:
        receiver.hold()
        attach(logplex, drains, f"http://127.0.0.1:{receiver.port}/")
        logplex.publish(APP, "app", "web.1", "first")
        assert receiver.arrived.wait(5)
        for i in range(800):
            logplex.publish(APP, "app", "web.1", f"{i:04d} " + "y" * 995)
        receiver.release()
        wait_until(lambda: len(receiver.frames()) >= 801, what="801 frames")
        sizes = [len(r.body) for r in receiver.requests[1:]]
        assert len(sizes) >= 8
        assert all(90 * 1024 < size <= 100 * 1024 + 1100 for size in sizes[:-1]), sizes


def test_https_retries_a_500_with_the_same_frame_id(logplex: Logplex, drains: list[Drain]) -> None:
    with HttpsReceiver() as receiver:
        receiver.statuses = [500, 503]
        attach(logplex, drains, f"http://127.0.0.1:{receiver.port}/", retry_delay=0.05)
        logplex.publish(APP, "app", "web.1", "retry me")
        first, second, third = receiver.wait_for_requests(3)
        assert first.body == second.body == third.body
        ids = {r.headers["logplex-frame-id"] for r in (first, second, third)}
        assert len(ids) == 1
        logplex.publish(APP, "app", "web.1", "next")
        fourth = receiver.wait_for_requests(4)[3]
        assert fourth.frames[0].endswith(" - next")
        assert fourth.headers["logplex-frame-id"] not in ids


def test_https_gives_a_batch_up_after_three_tries(logplex: Logplex, drains: list[Drain]) -> None:
    with HttpsReceiver() as receiver:
        receiver.statuses = [500, 429, 502]
        drain = attach(logplex, drains, f"http://127.0.0.1:{receiver.port}/", retry_delay=0.05)
        logplex.publish(APP, "app", "web.1", "lost")
        receiver.wait_for_requests(3)
        logplex.publish(APP, "app", "web.1", "kept")
        requests = receiver.wait_for_requests(4)
        assert requests[3].frames[0].endswith(" - kept")
        assert drain.dropped == 1


def test_https_drops_a_batch_the_receiver_refuses_with_400(
    logplex: Logplex, drains: list[Drain]
) -> None:
    with HttpsReceiver() as receiver:
        receiver.statuses = [400]
        attach(logplex, drains, f"http://127.0.0.1:{receiver.port}/", retry_delay=0.05)
        logplex.publish(APP, "app", "web.1", "refused")
        receiver.wait_for_requests(1)
        logplex.publish(APP, "app", "web.1", "accepted")
        requests = receiver.wait_for_requests(2)
        time.sleep(0.2)
        assert len(receiver.requests) == 2
        assert requests[1].frames[0].endswith(" - accepted")


def test_https_untrusted_certificate_is_not_delivered_to(
    logplex: Logplex, drains: list[Drain], tmp_path: Path
) -> None:
    stranger = local_ca(tmp_path / "stranger")
    with HttpsReceiver(tls=server_context(stranger)) as receiver:
        drain = attach(logplex, drains, f"https://localhost:{receiver.port}/", retry_delay=0.01)
        logplex.publish(APP, "app", "web.1", "private")
        wait_until(lambda: drain.dropped == 1, what="the batch given up on")
        assert receiver.requests == []


# -- overflow --------------------------------------------------------------------------------


def test_overflow_drops_the_oldest_and_says_l10(logplex: Logplex, drains: list[Drain]) -> None:
    with HttpsReceiver() as receiver:
        receiver.hold()
        attach(logplex, drains, f"http://127.0.0.1:{receiver.port}/")
        logplex.publish(APP, "app", "web.1", "in flight")
        assert receiver.arrived.wait(5)
        for i in range(2000):
            logplex.publish(APP, "app", "web.1", f"burst {i}")
        receiver.release()
        wait_until(lambda: len(receiver.frames()) >= 1 + 1 + 1024, what="all frames")
        time.sleep(0.2)
        frames = receiver.frames()
        assert frames[0].endswith(" - in flight")
        assert re.fullmatch(
            rf"<134>1 {TS} host heroku logplex - Error L10 \(output buffer overflow\): "
            r"976 messages dropped since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\.",
            frames[1],
        ), frames[1]
        assert [f.rsplit(" - ", 1)[1] for f in frames[2:]] == [
            f"burst {i}" for i in range(976, 2000)
        ]
        # The app's stream says it too, once; the drain did not take its own notice back.
        [notice] = l10_lines(logplex)
        assert (notice.source, notice.process) == ("heroku", "logplex")
        assert notice.message == frames[1].split(" - ", 1)[1]
        assert len(frames) == 1026


def test_an_overflowing_drain_does_not_feed_on_its_notices(
    logplex: Logplex, drains: list[Drain]
) -> None:
    with HttpsReceiver() as receiver, HttpsReceiver() as healthy:
        receiver.hold()
        slow = attach(logplex, drains, f"http://127.0.0.1:{receiver.port}/")
        other = attach(logplex, drains, f"http://127.0.0.1:{healthy.port}/", capacity=4096)
        logplex.publish(APP, "app", "web.1", "in flight")
        assert receiver.arrived.wait(5)
        for i in range(1100):
            logplex.publish(APP, "app", "web.1", f"burst {i}")
        receiver.release()
        wait_until(lambda: len(l10_lines(logplex)) == 1, what="an L10 line")
        wait_until(lambda: any("Error L10" in f for f in healthy.frames()), what="L10 relayed")
        time.sleep(0.3)
        assert len(l10_lines(logplex)) == 1
        assert (slow.dropped, other.dropped) == (1100 - 1024, 0)
        assert sum("Error L10" in f for f in receiver.frames()) == 1


def test_drain_secrets_never_reach_kikus_log(
    logplex: Logplex, drains: list[Drain], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with HttpsReceiver() as receiver:
        receiver.statuses = [500, 500, 500, 400]
        url = f"http://user:hunter2@127.0.0.1:{receiver.port}/in?key=sekrit"
        drain = attach(logplex, drains, url, retry_delay=0.01)
        logplex.publish(APP, "app", "web.1", "one")
        wait_until(lambda: drain.dropped == 1, what="the first batch given up on")
        logplex.publish(APP, "app", "web.1", "two")
        wait_until(lambda: drain.dropped == 2, what="the second batch refused")
    assert "dropped 1 lines" in caplog.text
    assert "hunter2" not in caplog.text and "sekrit" not in caplog.text


def test_drains_reach_only_public_addresses_unless_the_operator_allows(
    logplex: Logplex, drains: list[Drain]
) -> None:
    """A drain must not make kiku a way into this host's services (the API, add-ons)."""
    said: list[str] = []
    drain = open_drain(
        "syslog://127.0.0.1:5100", TOKEN, announce=said.append, backoff=FAST, private_ok=False
    )
    drains.append(drain)
    drain.offer(LogLine(1, 1.0, "app", "web.1", "secret stuff"))
    wait_until(lambda: said)
    assert "not public" in said[0] and "KIKU_DRAIN_ALLOW_PRIVATE=1" in said[0]
    assert drain.delivered == 0
    with pytest.raises(DeliveryFailed, match="not public"):
        check_public("localhost", 80)
    with pytest.raises(DeliveryFailed, match="not public"):
        check_public("10.1.2.3", 80)
    check_public("8.8.8.8", 53)  # a literal public address needs no lookup
