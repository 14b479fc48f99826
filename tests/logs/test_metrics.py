"""Metrics from router lines and memory samples: minutes, percentiles, 24 h, kept on disk."""

from pathlib import Path

import pytest

from kiku.logs import histogram
from kiku.logs.logplex import Logplex
from kiku.logs.metrics import RETENTION, Memory, Metrics
from kikutest import FakeClock

START = 1_800_000_000.0  # a minute boundary (30_000_000 minutes)


def router(service: int = 5, status: int = 200, dyno: str = "web.1", error: str = "") -> str:
    head = f'at=error code={error} desc="x" ' if error else "at=info "
    return (
        f'{head}method=GET path="/" host=a.localhost request_id=r fwd="127.0.0.1" dyno={dyno} '
        f"connect=1ms service={service}ms status={status} bytes=2 protocol=http"
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def metrics(tmp_path: Path, clock: FakeClock) -> Metrics:
    return Metrics(tmp_path / "metrics", clock=clock)


@pytest.fixture
def logplex(tmp_path: Path, clock: FakeClock, metrics: Metrics) -> Logplex:
    logplex = Logplex(tmp_path / "apps", clock=clock)
    logplex.watch(metrics)
    return logplex


def publish(logplex: Logplex, app: str, at: float, message: str) -> None:
    logplex.publish(app, "heroku", "router", message, at=at)


# -- the histogram ---------------------------------------------------------------------


def test_histogram_is_exact_below_64ms_and_within_3_percent_above() -> None:
    for ms in range(64):
        assert histogram.value(histogram.bucket(ms)) == ms
    for ms in [64, 65, 100, 127, 128, 1000, 4999, 30000, 123_456, 2**31]:
        assert abs(histogram.value(histogram.bucket(ms)) - ms) <= ms / 32
    # Buckets are contiguous and ordered: a larger time never lands in a smaller bucket.
    indexes = [histogram.bucket(ms) for ms in range(20000)]
    assert indexes == sorted(indexes)
    assert set(indexes) == set(range(indexes[-1] + 1))


def test_percentiles_are_nearest_rank() -> None:
    counts: dict[int, int] = {}
    for ms in range(1, 61):
        histogram.add(counts, ms)
    assert [histogram.percentile(counts, p) for p in (50, 95, 99, 100)] == [30, 57, 60, 60]
    assert histogram.percentile({}, 50) is None
    merged = histogram.merge([counts, {histogram.bucket(5000): 60}])
    assert histogram.percentile(merged, 50) == 60
    assert abs((histogram.percentile(merged, 99) or 0) - 5000) <= 5000 / 32


# -- aggregation -----------------------------------------------------------------------


def test_router_lines_fill_one_minute_buckets_per_app_and_type(
    metrics: Metrics, logplex: Logplex, clock: FakeClock
) -> None:
    for service in range(1, 101):  # 100 requests in the first minute: 1 ms .. 100 ms
        publish(logplex, "app-1", START + service * 0.5, router(service))
    publish(logplex, "app-1", START + 61, router(7, 404))
    publish(logplex, "app-1", START + 62, router(30000, 503, error="H12"))
    publish(logplex, "app-1", START + 63, router(0, 503, dyno="", error="H10").replace("0ms", ""))
    publish(logplex, "app-2", START + 5, router(1))
    logplex.publish("app-1", "app", "web.1", router(1), at=START + 5)  # the app's own output
    logplex.publish("app-1", "heroku", "web.1", "State changed from up to down", at=START + 5)
    clock.advance(150)

    report = metrics.report("app-1", START, clock())
    assert list(report) == ["web"]
    web = report["web"]
    first, second = web.series
    assert (first.at, first.minutes, first.requests) == (START, 1, 100)
    # Under 64 ms exact, above within 3 %: 95 ms and 94 ms share a bucket, reported as 94.
    assert first.response_ms == {"p50": 50, "p95": 94, "p99": 98}
    assert first.statuses == {"2xx": 100, "3xx": 0, "4xx": 0, "5xx": 0}
    assert first.errors == {}
    assert (second.at, second.requests) == (START + 60, 3)
    assert second.statuses == {"2xx": 0, "3xx": 0, "4xx": 1, "5xx": 2}
    assert second.errors == {"H10": 1, "H12": 1}
    summary = web.summary
    assert (summary.at, summary.minutes, summary.requests) == (START, 3, 103)
    assert summary.throughput_rpm == pytest.approx(103 / 3)
    assert summary.response_ms["p50"] == 50  # 1..100, 7 and 30000: the 51st is 50
    assert summary.memory is None
    assert metrics.report("app-2", START, clock())["web"].summary.requests == 1
    assert metrics.report("app-3", START, clock()) == {}


def test_window_and_process_type_filter(metrics: Metrics, clock: FakeClock) -> None:
    for minute in range(10):
        metrics.record_memory(
            "a", "worker", START + minute * 60, rss=2**20, total=2**20, quota=2**29
        )
        metrics.record_memory("a", "web", START + minute * 60, rss=2**20, total=2**20, quota=1)
    clock.advance(9 * 60 + 30)
    last_three = metrics.report("a", clock() - 2 * 60, clock(), "worker")
    assert list(last_three) == ["worker"]
    assert [s.at for s in last_three["worker"].series] == [START + m * 60 for m in (7, 8, 9)]
    assert last_three["worker"].summary.minutes == 3
    assert metrics.window(clock() - 2 * 60, clock()) == (int(START // 60) + 7, 3)
    assert metrics.empty(clock() - 2 * 60, clock()).requests == 0


def test_memory_is_the_mean_and_the_highest_of_the_samples(metrics: Metrics) -> None:
    mb = 2**20
    for at, rss in ((START, 10), (START + 20, 30), (START + 40, 20), (START + 20, 40)):
        metrics.record_memory("a", "web", at, rss=rss * mb, total=(rss + 1) * mb, quota=512 * mb)
    [web] = metrics.report("a", START, START + 59).values()
    assert web.summary.memory == Memory(
        rss=25 * mb, rss_max=40 * mb, total=26 * mb, total_max=41 * mb, quota=512 * mb
    )


def test_24_hours_are_kept_at_one_minute_resolution(
    metrics: Metrics, logplex: Logplex, clock: FakeClock, tmp_path: Path
) -> None:
    publish(logplex, "a", START - 24 * 3600, router())  # already too old: ignored
    publish(logplex, "a", START, router())
    publish(logplex, "a", START + 3600, router())
    assert metrics.report("a", START - 48 * 3600, clock())["web"].summary.requests == 1

    clock.advance(24 * 3600 - 1)  # the minute of START is still within the last 24 h
    assert metrics.report("a", START, clock())["web"].summary.requests == 2
    summary = metrics.report("a", 0, clock())["web"].summary
    assert (summary.at, summary.minutes) == (START, RETENTION)

    clock.advance(1)  # ... and now it is not
    metrics.flush()
    assert [s.at for s in metrics.report("a", 0, clock())["web"].series] == [START + 3600]

    clock.advance(3600)
    metrics.flush()
    assert metrics.report("a", 0, clock()) == {}
    assert list((tmp_path / "metrics").iterdir()) == []  # nothing left to keep


def test_a_restart_keeps_the_metrics(
    metrics: Metrics, logplex: Logplex, clock: FakeClock, tmp_path: Path
) -> None:
    for service in (3, 9, 200):
        publish(logplex, "a", START + 1, router(service))
    publish(logplex, "a", START + 2, router(5, 500, error="H13"))
    metrics.record_memory("a", "web", START + 3, rss=5 * 2**20, total=6 * 2**20, quota=2**29)
    metrics.record_memory("a", "worker", START + 70, rss=2**20, total=2**20, quota=2**29)
    clock.advance(120)
    before = metrics.report("a", START, clock())
    metrics.flush()
    assert [p.name for p in (tmp_path / "metrics").iterdir()] == ["a.json"]

    again = Metrics(tmp_path / "metrics", clock=clock)
    assert again.report("a", START, clock()) == before

    # Unchanged apps are not rewritten; another process's flush leaves the file alone.
    (tmp_path / "metrics" / "a.json").write_text("garbage")
    again.flush()
    assert (tmp_path / "metrics" / "a.json").read_text() == "garbage"
    # An unreadable file is started afresh rather than stopping the platform.
    assert Metrics(tmp_path / "metrics", clock=clock).report("a", START, clock()) == {}


def test_forgotten_apps_lose_their_file(metrics: Metrics, tmp_path: Path) -> None:
    metrics.record_memory("gone", "web", START, rss=1, total=1, quota=1)
    metrics.flush()
    assert (tmp_path / "metrics" / "gone.json").exists()
    metrics.forget("gone")
    metrics.flush()
    assert not (tmp_path / "metrics" / "gone.json").exists()
