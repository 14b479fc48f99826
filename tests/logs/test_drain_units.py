"""The drain's pieces on their own: URLs, the buffer, the delivery loop with a fake sender."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from kiku.errors import InvalidParams
from kiku.logs.drain import Backoff, Drain
from kiku.logs.drain_buffer import DrainBuffer
from kiku.logs.drain_urls import parse_drain_url, redact
from kiku.logs.lines import LogLine
from kiku.logs.sender import DeliveryFailed
from logs.receivers import threads_stopped, wait_until


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    with threads_stopped():
        yield


def line(n: int, message: str = "") -> LogLine:
    return LogLine(n, 1_800_000_000.0 + n, "app", "web.1", message or f"line {n}")


# -- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port"),
    [
        ("syslog://logs.example.com:514", "syslog", "logs.example.com", 514),
        ("syslog+tls://10.0.0.5:6514", "syslog+tls", "10.0.0.5", 6514),
        ("https://u:p@logs.example.com/in?x=1", "https", "logs.example.com", 443),
        ("http://[::1]:8080/drain", "http", "::1", 8080),
        ("HTTPS://Logs.Example.com", "https", "logs.example.com", 443),
    ],
)
def test_drain_urls_kiku_accepts(url: str, scheme: str, host: str, port: int) -> None:
    target = parse_drain_url(url)
    assert (target.scheme, target.host, target.port) == (scheme, host, port)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://logs.example.com:21", "scheme must be syslog://"),
        ("logs.example.com:514", "scheme must be syslog://"),
        ("syslog+udp://logs.example.com:514", "scheme must be syslog://"),
        ("syslog://logs.example.com", "syslog drains need a port"),
        ("syslog+tls://logs.example.com:0", "syslog drains need a port"),
        ("syslog://:514", "names no host"),
        ("https:///path", "names no host"),
        ("syslog://logs.example.com:99999", "Port out of range"),
        ("syslog://logs.example.com:port", "Port could not be cast"),
        ("https://logs.example.com/a b", "cannot be empty or contain spaces"),
        ("", "cannot be empty"),
        ("syslog://user:pw@logs.example.com:514", "take no user or password"),
    ],
)
def test_drain_urls_kiku_refuses_say_why(url: str, says: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        parse_drain_url(url)
    assert says in caught.value.message
    assert "pw" not in caught.value.message


def test_redact_hides_userinfo_and_query() -> None:
    assert redact("https://user:secret@logs.example.com/in?key=abc") == (
        "https://***@logs.example.com/in?***"
    )
    assert redact("syslog+tls://logs.example.com:6514") == "syslog+tls://logs.example.com:6514"
    assert parse_drain_url("https://u:p@h.example.com:8443/x?y=1").without_userinfo == (
        "https://h.example.com:8443/x?y=1"
    )


def test_userinfo_is_percent_decoded_for_basic_auth() -> None:
    target = parse_drain_url("https://us%3Aer:p%40ss@logs.example.com/")
    assert (target.username, target.password) == ("us:er", "p@ss")


# -- the buffer ------------------------------------------------------------------------------


def test_buffer_drops_the_oldest_and_counts() -> None:
    buffer = DrainBuffer(capacity=3)
    for n in range(1, 6):
        buffer.offer(line(n))
    assert [x.seq for x in buffer.take(10, 10_000, 0)] == [3, 4, 5]
    assert buffer.take_dropped() == (2, line(4).at)
    assert buffer.take_dropped() == (0, line(4).at)
    assert buffer.total_dropped == 2


def test_buffer_takes_about_max_bytes_but_at_least_one_line() -> None:
    buffer = DrainBuffer()
    for n in range(10):
        buffer.offer(line(n, "x" * 900))
    assert len(buffer.take(100, 3000, 0)) == 3  # 1000 bytes a frame, about
    assert len(buffer.take(2, 1_000_000, 0)) == 2
    assert len(buffer.take(100, 10, 0)) == 1
    assert len(buffer) == 4


def test_closed_buffer_never_waits() -> None:
    buffer = DrainBuffer()
    buffer.close()
    assert buffer.take(10, 10_000, timeout=30) == []


def test_backoff_doubles_up_to_a_maximum_and_resets() -> None:
    backoff = Backoff(initial=0.5, maximum=3)
    assert [backoff.next() for _ in range(5)] == [0.5, 1, 2, 3, 3]
    backoff.reset()
    assert backoff.next() == 0.5


# -- the loop --------------------------------------------------------------------------------


class FakeSender:
    """Fails its first `failures` deliveries (temporarily); records the ones that succeed."""

    max_lines = 4
    target_bytes = 1_000_000

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[str]] = []
        self.tries = 0
        self.dropped = 0
        self.closed = False
        self.gate = threading.Event()
        self.gate.set()

    def deliver(self, lines: Sequence[LogLine]) -> None:
        self.gate.wait(5)
        self.tries += 1
        if self.failures:
            self.failures -= 1
            raise DeliveryFailed("receiver away")
        self.batches.append([x.message for x in lines])

    def abort(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.closed = True

    def messages(self) -> list[str]:
        return [m for batch in self.batches for m in batch]


def test_failed_deliveries_are_tried_again_in_order() -> None:
    sender = FakeSender(failures=3)
    drain = Drain(sender, name="d.test", backoff=Backoff(0.01, 0.02)).start()
    for n in range(10):
        drain.offer(line(n))
    wait_until(lambda: len(sender.messages()) == 10)
    drain.close(grace=1)
    assert sender.messages() == [f"line {n}" for n in range(10)]
    assert all(len(batch) <= 4 for batch in sender.batches)
    assert sender.tries == len(sender.batches) + 3
    assert sender.closed and drain.delivered == 10


def test_close_stops_a_stuck_delivery_after_the_grace() -> None:
    sender = FakeSender()
    sender.gate.clear()  # deliver() blocks until abort()
    drain = Drain(sender, name="d.test").start()
    drain.offer(line(1))
    wait_until(lambda: len(drain.buffer) == 0)
    drain.close(grace=0.1)
    assert not drain.alive and sender.closed


def test_l10_notices_come_at_most_once_a_second() -> None:
    now = [1_800_000_100.0]
    said: list[str] = []
    sender = FakeSender()
    sender.gate.clear()
    drain = Drain(sender, name="d.t", capacity=2, announce=said.append, clock=lambda: now[0])
    drain.start()
    drain.offer(line(1))
    wait_until(lambda: len(drain.buffer) == 0)  # line 1 is in flight, stuck
    for n in range(2, 7):
        drain.offer(line(n))  # 2..6 into room for 2: 3 dropped
    sender.gate.set()
    wait_until(lambda: len(said) == 1)
    assert said == [
        "Error L10 (output buffer overflow): 3 messages dropped since 2027-01-15T08:00:04+00:00."
    ]
    for n in range(7, 10):
        drain.offer(line(n))  # may drop again, but no notice until the clock moves
    wait_until(lambda: len(drain.buffer) == 0)
    assert len(said) == 1
    now[0] += 1
    drain.close(grace=1)
    assert sender.messages()[:2] == ["line 1", said[0]]
