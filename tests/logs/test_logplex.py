"""The per-app stream: line format, the 1500-line history (on disk too), filters, sinks."""

import asyncio
from pathlib import Path

from kiku.logs.intake import RouterLogIntake, bind_intake
from kiku.logs.lines import LogLine, rfc3339, split
from kiku.logs.logplex import Logplex
from kiku.logs.sessions import TailSession
from kikutest import FakeClock

APP = "3f0e4c52-0000-4000-8000-000000000001"


class Collect:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def offer(self, line: LogLine) -> None:
        self.lines.append(line)

    def observe(self, app_id: str, line: LogLine) -> None:
        self.lines.append(line)


def test_line_renders_as_heroku_shows_it() -> None:
    line = LogLine(1, 1_764_374_400.5, "app", "web.1", "Hello")
    assert line.render() == "2025-11-29T00:00:00.500000+00:00 app[web.1]: Hello"
    assert rfc3339(1_764_374_400.000001) == "2025-11-29T00:00:00.000001+00:00"
    assert rfc3339(float(f"{1_764_374_400.1234567:.6f}")) == rfc3339(1_764_374_400.1234567)


def test_syslog_frame_is_octet_counted_rfc5424() -> None:
    line = LogLine(1, 1_764_374_400.5, "app", "web.1", "Hello")
    frame = line.syslog("d.1234")
    length, _, message = frame.partition(b" ")
    assert int(length) == len(message)
    assert message == b"<190>1 2025-11-29T00:00:00.500000+00:00 d.1234 app web.1 - - Hello\n"
    assert line.syslog("host", sd=False).endswith(b"host app web.1 - Hello\n")


def test_long_lines_split_at_10000_bytes_on_character_boundaries() -> None:
    assert split("a" * 25000) == ["a" * 10000, "a" * 10000, "a" * 5000]
    pieces = split("é" * 6000)  # 12000 bytes
    assert all(len(p.encode()) <= 10000 for p in pieces)
    assert "".join(pieces) == "é" * 6000


def test_history_keeps_the_last_1500_and_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    logplex = Logplex(tmp_path, clock=clock)
    for i in range(4000):
        logplex.publish(APP, "app", "web.1", f"line {i}")
        if i % 700 == 0:
            logplex.flush()  # compaction happens along the way
    logplex.flush()
    kept = logplex.history(APP, 1500)
    assert [line.message for line in kept] == [f"line {i}" for i in range(2500, 4000)]
    assert len(logplex.history(APP, 100)) == 100

    again = Logplex(tmp_path, clock=clock)
    assert again.history(APP, 1500) == kept
    again.publish(APP, "heroku", "router", "at=info")
    assert again.history(APP, 1)[0].seq == kept[-1].seq + 1
    assert len((tmp_path / f"{APP}.log").read_text().splitlines()) <= 3000


def test_filters_follow_logplex(tmp_path: Path) -> None:
    logplex = Logplex(tmp_path)
    for source, process in [
        ("app", "web.1"),
        ("app", "web.10"),
        ("app", "webhook.1"),
        ("heroku", "web.1"),
        ("heroku", "router"),
        ("app", "api"),
    ]:
        logplex.publish(APP, source, process, "x")
    web = logplex.history(APP, 100, dyno="web")
    assert [(line.source, line.process) for line in web] == [
        ("app", "web.1"),
        ("app", "web.10"),
        ("heroku", "web.1"),
    ]
    assert [line.process for line in logplex.history(APP, 100, source="app", dyno="web.1")] == [
        "web.1"
    ]
    assert [line.process for line in logplex.history(APP, 100, source="heroku")] == [
        "web.1",
        "router",
    ]


def test_multi_line_messages_become_lines_and_sinks_see_them_in_order(tmp_path: Path) -> None:
    logplex = Logplex(tmp_path)
    sink, everything = Collect(), Collect()
    logplex.attach(APP, sink)
    logplex.watch(everything)
    logplex.publish(APP, "app", "run.1", "one\ntwo\r\nthree")
    logplex.publish("other-app", "app", "web.1", "elsewhere")
    assert [line.message for line in sink.lines] == ["one", "two", "three"]
    assert len(everything.lines) == 4
    logplex.detach(APP, sink)
    logplex.publish(APP, "app", "run.1", "after")
    assert len(sink.lines) == 3


def test_attach_after_returns_exactly_the_missed_lines(tmp_path: Path) -> None:
    logplex = Logplex(tmp_path)
    for i in range(5):
        logplex.publish(APP, "app", "web.1", f"{i}")
    sink = Collect()
    missed = logplex.attach(APP, sink, after=3)
    logplex.publish(APP, "app", "web.1", "5")
    assert [line.message for line in missed] == ["3", "4"]
    assert [line.message for line in sink.lines] == ["5"]


def test_a_stalled_tail_drops_and_says_l11_without_slowing_anyone(tmp_path: Path) -> None:
    async def scenario() -> None:
        logplex = Logplex(tmp_path)
        stalled = TailSession(asyncio.get_running_loop(), None, None, limit=10)
        other = Collect()
        logplex.attach(APP, stalled)
        logplex.attach(APP, other)
        for i in range(25):
            logplex.publish(APP, "app", "web.1", f"{i}")
        assert len(other.lines) == 25  # the other consumer missed nothing
        lines, notice = await stalled.next_batch(1)
        assert [line.message for line in lines] == [str(i) for i in range(10)]
        assert notice is not None
        assert "heroku[logplex]: Error L11 (Tail buffer overflow) -> This tail session " in notice
        assert "dropped 15 messages since " in notice
        logplex.publish(APP, "app", "web.1", "later")
        lines, notice = await stalled.next_batch(1)
        assert [line.message for line in lines] == ["later"] and notice is None

    asyncio.run(scenario())


def test_a_destroyed_apps_stream_and_file_go(tmp_path: Path) -> None:
    logplex = Logplex(tmp_path)
    logplex.publish(APP, "app", "web.1", "hello")
    logplex.flush()
    assert (tmp_path / f"{APP}.log").exists()
    logplex.forget(APP)
    logplex.publish(APP, "heroku", "web.1", "Stopping all processes with SIGTERM")
    logplex.flush()
    assert not (tmp_path / f"{APP}.log").exists()
    assert logplex.history(APP, 100) == []


def test_router_datagrams_become_router_lines(tmp_path: Path) -> None:
    logplex = Logplex(tmp_path / "apps")
    sock = bind_intake(tmp_path / "run" / "logplex.sock")
    try:
        intake = RouterLogIntake(logplex, sock)
        intake.received(
            f'{APP} 1764374400.250000 at=info method=GET path="/" status=200\n'
            "- 1764374400.3 at=error code=H14 host=nope.localhost\n"
            "../../etc 1764374400.3 at=info\n"
            f"{APP} not-a-time at=info\n".encode()
        )
    finally:
        sock.close()
    [line] = logplex.history(APP, 10)
    assert line.render() == (
        '2025-11-29T00:00:00.250000+00:00 heroku[router]: at=info method=GET path="/" status=200'
    )
    assert intake.malformed == 2  # no time, no app: only the line for a real app is kept
    assert (tmp_path / "run" / "logplex.sock").stat().st_mode & 0o777 == 0o600
