"""kiku metrics against a MockTransport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from kiku.cli.context import CliContext
from kiku.cli.main import build_cli

STATS = {
    "at": "2026-11-28T22:00:00Z",
    "minutes": 60,
    "requests": 1204,
    "throughput_rpm": 20.07,
    "response_time_ms": {"p50": 4, "p95": 18, "p99": 40},
    "status": {"2xx": 1190, "3xx": 0, "4xx": 12, "5xx": 2},
    "errors": {"H12": 2},
    "memory_mb": {"rss": 21.5, "rss_max": 22.0, "total": 23.0, "total_max": 24.0, "quota": 512.0},
}
EMPTY = {
    **STATS,
    "requests": 0,
    "throughput_rpm": 0.0,
    "response_time_ms": {"p50": None, "p95": None, "p99": None},
    "status": {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0},
    "errors": {},
    "memory_mb": None,
}
BODY = {
    "app": {"id": "x", "name": "app"},
    "since": "2026-11-28T22:00:00Z",
    "until": "2026-11-28T22:59:30Z",
    "resolution": 60,
    "process_types": [
        {"type": "web", "summary": STATS, "series": []},
        {"type": "worker", "summary": EMPTY, "series": []},
    ],
}


def run(
    tmp_path: Path, args: list[str], seen: list[httpx.Request], answer: httpx.Response
) -> tuple[int, str]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    env = {"HOME": str(tmp_path), "KIKU_API_KEY": "HRKU-t"}
    context = CliContext.from_env(env, transport=httpx.MockTransport(handler), cwd=tmp_path)
    result = CliRunner().invoke(build_cli(), args, obj=context)
    return result.exit_code, result.output


def test_metrics_prints_a_row_per_process_type(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    code, output = run(tmp_path, ["metrics", "-a", "app"], seen, httpx.Response(200, json=BODY))
    assert code == 0, output
    assert seen[0].url.path == "/apps/app/metrics"
    assert dict(seen[0].url.params) == {"minutes": "60"}
    lines = output.splitlines()
    assert lines[0] == "=== ⬢ app Metrics (last 60 minutes)"
    assert lines[1].split() == [
        "Type", "Requests", "rpm", "p50", "p95", "p99", "2xx", "3xx", "4xx", "5xx", "Errors",
        "Memory", "(rss/quota)",
    ]  # fmt: skip
    assert lines[2].split() == [
        "web", "1204", "20.1", "4ms", "18ms", "40ms", "1190", "0", "12", "2", "H12×2",
        "21.5/512", "MB",
    ]  # fmt: skip
    assert lines[3].split() == ["worker", "0", "0.0", "-", "-", "-", "0", "0", "0", "0", "-", "-"]


def test_metrics_type_and_minutes_and_json(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    args = ["metrics", "-a", "app", "--type", "web", "--minutes", "15", "--json"]
    code, output = run(tmp_path, args, seen, httpx.Response(200, json=BODY))
    assert code == 0
    assert dict(seen[0].url.params) == {"minutes": "15", "process_type": "web"}
    assert json.loads(output) == BODY


def test_metrics_minutes_are_bounded(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    answer = httpx.Response(200, json=BODY)
    code, output = run(tmp_path, ["metrics", "-a", "app", "--minutes", "2000"], seen, answer)
    assert code == 2 and seen == []
    assert "2000" in output


def test_free_dynos_error_is_shown(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    message = "Metrics are not available for free dynos; scale to hobby or larger"
    answer: Any = httpx.Response(422, json={"id": "invalid_params", "message": message})
    code, output = run(tmp_path, ["metrics", "-a", "app"], seen, answer)
    assert code != 0
    assert message in output
