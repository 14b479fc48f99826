"""kiku features / labs against a MockTransport."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from kiku.cli.context import CliContext
from kiku.cli.main import build_cli

FEATURE = {
    "name": "runtime-dyno-metadata",
    "description": "Dyno metadata",
    "enabled": False,
}


def run(tmp_path: Path, args: list[str], seen: list[httpx.Request]) -> tuple[int, str]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "PATCH":
            body = json.loads(request.content)
            return httpx.Response(200, json={**FEATURE, "enabled": body["enabled"]})
        return httpx.Response(200, json=[FEATURE])

    env = {"HOME": str(tmp_path), "KIKU_API_KEY": "HRKU-t"}
    context = CliContext.from_env(env, transport=httpx.MockTransport(handler), cwd=tmp_path)
    result = CliRunner().invoke(build_cli(), args, obj=context)
    return result.exit_code, result.output


def test_features_lists(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    code, output = run(tmp_path, ["features", "-a", "app"], seen)
    assert code == 0
    assert "[ ] runtime-dyno-metadata" in output
    assert seen[0].url.path == "/apps/app/features"


def test_labs_enable_patches(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    code, _ = run(tmp_path, ["labs:enable", "runtime-dyno-metadata", "-a", "app"], seen)
    assert code == 0
    assert seen[0].method == "PATCH"
    assert seen[0].url.path == "/apps/app/features/runtime-dyno-metadata"
    assert json.loads(seen[0].content) == {"enabled": True}


def test_maintenance_on_patches_the_app(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"name": "app", "maintenance": True})

    env = {"HOME": str(tmp_path), "KIKU_API_KEY": "HRKU-t"}
    context = CliContext.from_env(env, transport=httpx.MockTransport(handler), cwd=tmp_path)
    result = CliRunner().invoke(build_cli(), ["maintenance:on", "-a", "app"], obj=context)
    assert result.exit_code == 0
    assert seen[0].method == "PATCH" and json.loads(seen[0].content) == {"maintenance": True}
    status = CliRunner().invoke(build_cli(), ["maintenance", "-a", "app"], obj=context)
    assert status.output.strip() == "on"
