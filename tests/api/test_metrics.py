"""GET /apps/{app}/metrics in-process: shape, windows, process types, free dynos."""

import pytest
from starlette.testclient import TestClient

from kiku.api.routes.metrics import FREE
from kiku.platform import Platform
from kiku.store.models import App, Formation
from kikutest import FakeClock, bearer, login, signup

LINE = (
    'at=info method=GET path="/" host=metered.localhost request_id=r fwd="127.0.0.1" dyno={dyno} '
    "connect=1ms service={ms}ms status={status} bytes=2 protocol=http"
)


@pytest.fixture
def token(api: TestClient, platform: Platform, clock: FakeClock) -> dict[str, str]:
    headers = bearer(login(api, signup(platform, "metrics@example.com"), clock))
    assert api.post("/apps", headers=headers, json={"name": "metered"}).status_code == 201
    return headers


def app_id(platform: Platform) -> str:
    with platform.store.session() as db:
        app = db.query(App).filter(App.name == "metered").one()
        return app.id


def scale(platform: Platform, **sizes: tuple[int, str]) -> None:
    with platform.store.session() as db:
        for kind, (quantity, size) in sizes.items():
            db.add(Formation(app_id=app_id(platform), type=kind, quantity=quantity, size=size))


def traffic(platform: Platform, at: float, ms: int, status: int = 200, dyno: str = "web.1") -> None:
    message = LINE.format(dyno=dyno, ms=ms, status=status)
    platform.logplex.publish(app_id(platform), "heroku", "router", message, at=at)


def test_metrics_per_process_type_by_the_minute(
    api: TestClient, platform: Platform, token: dict[str, str], clock: FakeClock
) -> None:
    scale(platform, web=(2, "standard-1x"), worker=(1, "standard-1x"), clock=(0, "standard-1x"))
    start = (clock() // 60) * 60
    for ms in (10, 20, 30, 40):
        traffic(platform, start + 1, ms)
    traffic(platform, start + 61, 50, 302, "web.2")
    platform.metrics.record_memory(
        app_id(platform), "web", start + 2, rss=30 * 2**20, total=31 * 2**20, quota=512 * 2**20
    )
    clock.now = start + 90

    response = api.get("/apps/metered/metrics", headers=token, params={"minutes": "5"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["app"] == {"id": app_id(platform), "name": "metered"}
    assert body["resolution"] == 60
    assert [t["type"] for t in body["process_types"]] == ["web", "worker"]  # clock has 0
    web, worker = body["process_types"]
    assert web["summary"] == {
        "at": body["since"],
        "minutes": 5,
        "requests": 5,
        "throughput_rpm": 1.0,
        "response_time_ms": {"p50": 30, "p95": 50, "p99": 50},
        "status": {"2xx": 4, "3xx": 1, "4xx": 0, "5xx": 0},
        "errors": {},
        "memory_mb": {
            "rss": 30.0,
            "rss_max": 30.0,
            "total": 31.0,
            "total_max": 31.0,
            "quota": 512.0,
        },
    }
    assert [(s["requests"], s["memory_mb"] is None) for s in web["series"]] == [
        (4, False),
        (1, True),
    ]
    assert worker["summary"]["requests"] == 0 and worker["series"] == []
    assert worker["summary"]["response_time_ms"] == {"p50": None, "p95": None, "p99": None}

    only_web = api.get(
        "/apps/metered/metrics", headers=token, params={"process_type": "web"}
    ).json()
    assert [t["type"] for t in only_web["process_types"]] == ["web"]
    assert only_web["process_types"][0]["summary"]["minutes"] == 60

    last_minute = api.get("/apps/metered/metrics", headers=token, params={"minutes": "1"}).json()
    assert last_minute["process_types"][0]["summary"]["requests"] == 1
    since = api.get(
        "/apps/metered/metrics", headers=token, params={"since": last_minute["since"]}
    ).json()
    assert since["process_types"][0]["summary"]["requests"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"minutes": "0"},
        {"minutes": "1441"},
        {"minutes": "x"},
        {"since": "yesterday"},
        {"minutes": "5", "since": "2026-11-28T00:00:00Z"},
    ],
)
def test_bad_windows_are_422(
    api: TestClient, token: dict[str, str], params: dict[str, str]
) -> None:
    response = api.get("/apps/metered/metrics", headers=token, params=params)
    assert response.status_code == 422
    assert response.json()["id"] == "invalid_params"


def test_free_dynos_have_no_metrics(
    api: TestClient, platform: Platform, token: dict[str, str]
) -> None:
    scale(platform, web=(1, "free"))
    for params in ({}, {"process_type": "web"}):
        response = api.get("/apps/metered/metrics", headers=token, params=params)
        assert response.status_code == 422
        assert response.json() == {"id": "invalid_params", "message": FREE}
    assert "kiku ps:type hobby" in FREE


def test_a_stranger_sees_no_metrics(
    api: TestClient, platform: Platform, token: dict[str, str], clock: FakeClock
) -> None:
    stranger = bearer(login(api, signup(platform, "stranger@example.com"), clock))
    assert api.get("/apps/metered/metrics", headers=stranger).status_code in (403, 404)
