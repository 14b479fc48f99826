"""kiku domains and certs against a MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from click.testing import CliRunner

from kiku.cli.context import CliContext
from kiku.cli.main import build_cli

DEFAULT = {
    "id": "d0",
    "hostname": "app.localhost",
    "kind": "heroku",
    "cname": None,
    "sni_endpoint": None,
}
CUSTOM = {
    "id": "d1",
    "hostname": "www.example.com",
    "kind": "custom",
    "cname": "app.localhost",
    "sni_endpoint": {"id": "e1", "name": "misty-meadow-6277"},
}
APEX = {**CUSTOM, "id": "d2", "hostname": "example.com", "sni_endpoint": None}
ENDPOINT = {
    "id": "e1",
    "name": "misty-meadow-6277",
    "domains": ["d1"],
    "ssl_cert": {
        "cert_domains": ["www.example.com"],
        "expires_at": "2030-01-01T00:00:00Z",
        "starts_at": "2026-01-01T00:00:00Z",
        "ca_signed?": True,
        "issuer": "CN=test CA",
        "subject": "CN=www.example.com",
    },
}


def run(
    tmp_path: Path, args: list[str], handler: Callable[[httpx.Request], httpx.Response]
) -> tuple[int, str]:
    env = {"HOME": str(tmp_path), "KIKU_API_KEY": "HRKU-t"}
    context = CliContext.from_env(env, transport=httpx.MockTransport(handler), cwd=tmp_path)
    result = CliRunner().invoke(build_cli(), args, obj=context)
    return result.exit_code, result.output


def test_domains_lists_the_default_then_custom_ones(tmp_path: Path) -> None:
    code, out = run(
        tmp_path,
        ["domains", "-a", "app"],
        lambda r: httpx.Response(200, json=[DEFAULT, CUSTOM, APEX]),
    )
    assert code == 0, out
    assert "=== app Heroku Domain\napp.localhost\n" in out
    assert "=== app Custom Domains" in out
    assert "www.example.com  CNAME" in out and "misty-meadow-6277" in out
    assert "example.com      ALIAS or ANAME" in out


def test_domains_add_remove_and_clear(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json=[DEFAULT, CUSTOM, APEX])
        return httpx.Response(201 if request.method == "POST" else 200, json=CUSTOM)

    code, out = run(tmp_path, ["domains:add", "www.example.com", "-a", "app"], handler)
    assert code == 0, out
    assert json.loads(seen[0].content) == {"hostname": "www.example.com"}
    assert "Adding www.example.com to ⬢ app... done" in out
    assert "CNAME record for www.example.com pointing to the DNS Target app.localhost" in out
    code, out = run(tmp_path, ["domains:remove", "www.example.com", "-a", "app"], handler)
    assert code == 0 and seen[-1].method == "DELETE"
    assert seen[-1].url.path == "/apps/app/domains/www.example.com"
    seen.clear()
    code, out = run(tmp_path, ["domains:clear", "-a", "app"], handler)
    assert code == 0, out
    assert [f"{r.method} {r.url.path}" for r in seen] == [
        "GET /apps/app/domains",
        "DELETE /apps/app/domains/d1",
        "DELETE /apps/app/domains/d2",
    ]


def test_certs_add_reads_the_files_and_remove_confirms(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json=[ENDPOINT])
        return httpx.Response(201, json=ENDPOINT)

    (tmp_path / "server.crt").write_text("CERT")
    (tmp_path / "server.key").write_text("KEY")
    code, out = run(
        tmp_path,
        ["certs:add", str(tmp_path / "server.crt"), str(tmp_path / "server.key"), "-a", "app"],
        handler,
    )
    assert code == 0, out
    assert json.loads(seen[0].content) == {"certificate_chain": "CERT", "private_key": "KEY"}
    assert "misty-meadow-6277" in out
    code, out = run(tmp_path, ["certs", "-a", "app"], handler)
    assert code == 0 and "www.example.com" in out and "2030-01-01 00:00:00 UTC" in out
    code, out = run(tmp_path, ["certs:remove", "-a", "app", "--confirm", "nope"], handler)
    assert code != 0 and "did not match" in out
    code, out = run(tmp_path, ["certs:remove", "-a", "app", "--confirm", "app"], handler)
    assert code == 0, out
    assert seen[-1].method == "DELETE"
    assert seen[-1].url.path == "/apps/app/sni-endpoints/misty-meadow-6277"
