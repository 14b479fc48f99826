"""Log session URLs: signed (the URL is the secret), expiring 360 s after last use, and
still valid after a restart (the key is kept in the data dir)."""

from pathlib import Path

from kiku.logs.sessions import LogSessions, SessionSpec
from kikutest import FakeClock


def test_a_session_expires_360_s_after_its_last_use(tmp_path: Path) -> None:
    clock = FakeClock()
    sessions = LogSessions(tmp_path / "session.key", clock)
    token = sessions.create(SessionSpec("app-1", lines=20, tail=True, source="app", dyno="web"))
    clock.advance(300)
    spec = sessions.open(token)
    assert spec is not None
    assert (spec.app_id, spec.lines, spec.tail, spec.source, spec.dyno) == (
        "app-1",
        20,
        True,
        "app",
        "web",
    )
    clock.advance(300)  # 600 s after creation, 300 s after use
    assert sessions.open(token) is not None
    clock.advance(361)
    assert sessions.open(token) is None


def test_an_unused_session_expires_and_a_restart_keeps_valid_ones(tmp_path: Path) -> None:
    clock = FakeClock()
    sessions = LogSessions(tmp_path / "session.key", clock)
    unused = sessions.create(SessionSpec("app-1"))
    fresh = sessions.create(SessionSpec("app-1"))
    clock.advance(100)
    restarted = LogSessions(tmp_path / "session.key", clock)
    assert restarted.open(fresh) is not None
    clock.advance(261)
    assert restarted.open(unused) is None
    assert (tmp_path / "session.key").stat().st_mode & 0o777 == 0o600


def test_forged_and_malformed_tokens_are_refused(tmp_path: Path) -> None:
    sessions = LogSessions(tmp_path / "session.key")
    other = LogSessions(tmp_path / "other.key")
    token = sessions.create(SessionSpec("app-1"))
    payload, _, signature = token.partition(".")
    assert other.open(token) is None
    assert sessions.open(payload + "." + signature[::-1]) is None
    assert sessions.open("garbage") is None
    assert sessions.open("") is None
    forged_payload = other.create(SessionSpec("app-2")).partition(".")[0]
    assert sessions.open(forged_payload + "." + signature) is None
