"""kiku drains, drains:add, drains:remove against a MockTransport."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from kiku.cli.context import CliContext
from kiku.cli.main import build_cli
from kiku.cli.printer import Printer

DRAIN = {
    "addon": None,
    "app": {"id": "0a1b2c3d-0000-4000-8000-000000000001", "name": "shop"},
    "created_at": "2026-01-01T00:00:00Z",
    "id": "5e0f4a1b-0000-4000-8000-000000000002",
    "token": "d.0f3c6d8e-1b2a-4c5d-9e8f-7a6b5c4d3e2f",
    "updated_at": "2026-01-01T00:00:00Z",
    "url": "syslog+tls://logs.example.com:6514",
}


def run(
    tmp_path: Path, args: list[str], listed: list[dict[str, object]] | None = None
) -> tuple[int, str, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(201, json={**DRAIN, **json.loads(request.content)})
        if request.method == "DELETE":
            return httpx.Response(200, json=DRAIN)
        return httpx.Response(200, json=[DRAIN] if listed is None else listed)

    env = {"HOME": str(tmp_path), "KIKU_API_KEY": "HRKU-t"}
    context = CliContext.from_env(
        env, transport=httpx.MockTransport(handler), cwd=tmp_path, printer=Printer(color=False)
    )
    result = CliRunner().invoke(build_cli(), args, obj=context)
    return result.exit_code, result.output, seen


def test_drains_lists_urls_and_tokens(tmp_path: Path) -> None:
    code, output, seen = run(tmp_path, ["drains", "-a", "shop"])
    assert code == 0, output
    assert seen[0].method == "GET" and seen[0].url.path == "/apps/shop/log-drains"
    assert output.splitlines() == [
        "=== Drains",
        "syslog+tls://logs.example.com:6514 (d.0f3c6d8e-1b2a-4c5d-9e8f-7a6b5c4d3e2f)",
    ]


def test_drains_json(tmp_path: Path) -> None:
    code, output, _ = run(tmp_path, ["drains", "-a", "shop", "--json"])
    assert code == 0
    assert json.loads(output) == [DRAIN]


def test_no_drains(tmp_path: Path) -> None:
    code, output, _ = run(tmp_path, ["drains", "-a", "shop"], listed=[])
    assert code == 0
    assert "shop has no drains." in output


def test_drains_add_posts_the_url(tmp_path: Path) -> None:
    url = "https://user:pw@logs.example.com/in"
    code, output, seen = run(tmp_path, ["drains:add", url, "-a", "shop"])
    assert code == 0, output
    assert seen[0].method == "POST" and seen[0].url.path == "/apps/shop/log-drains"
    assert json.loads(seen[0].content) == {"url": url}
    assert output.strip() == f"Successfully added drain {url}"


def test_drains_remove_sends_the_url_as_one_segment(tmp_path: Path) -> None:
    url = "https://logs.example.com/in?x=1"
    code, output, seen = run(tmp_path, ["drains:remove", url, "-a", "shop"])
    assert code == 0, output
    assert seen[0].method == "DELETE"
    assert (
        seen[0].url.raw_path == b"/apps/shop/log-drains/https%3A%2F%2Flogs.example.com%2Fin%3Fx%3D1"
    )
    assert output.strip() == "Successfully removed drain syslog+tls://logs.example.com:6514"


def test_drains_remove_by_token(tmp_path: Path) -> None:
    code, _, seen = run(tmp_path, ["drains:remove", DRAIN["token"], "-a", "shop"])  # type: ignore[list-item]
    assert code == 0
    assert seen[0].url.path == f"/apps/shop/log-drains/{DRAIN['token']}"
