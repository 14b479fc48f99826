"""The HTTPS port: kiku's certificate for *.DOMAIN, custom domains' own chosen by SNI,
X-Forwarded-Proto https and protocol=https in the log."""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile

from certkit import TestCA
from kiku.router.tls import Certificates, server_context
from router.routerkit import Client, Dyno, route, run, stack, teardown


def _files(pem_cert: str, pem_key: str) -> str:
    fd, path = tempfile.mkstemp(suffix=".pem")
    with os.fdopen(fd, "w") as out:
        out.write(pem_cert + pem_key)
    return path


async def tls_client(
    port: int, server_name: str, ca: TestCA, check_hostname: bool = True
) -> tuple[Client, dict]:  # type: ignore[type-arg]
    context = ssl.create_default_context(cadata=ca.pem)
    context.check_hostname = check_hostname
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_name
    )
    cert = writer.get_extra_info("peercert")
    return Client(reader, writer), cert


def names(cert: dict) -> list[str]:  # type: ignore[type-arg]
    return [value for kind, value in cert["subjectAltName"] if kind == "DNS"]


@run
async def test_https_with_kiku_and_custom_certificates() -> None:
    kiku_ca, user_ca = TestCA("kiku local CA"), TestCA("user CA")
    default = kiku_ca.issue("*.kiku.test", "kiku.test")
    custom = user_ca.issue("www.example.com")
    default_file, custom_file = _files(default.cert, default.key), _files(custom.cert, custom.key)
    d = await Dyno().start()
    r = route("app", d.backend)
    s = await stack(
        routes={"app.kiku.test": r, "www.example.com": r},
        certificates=Certificates(server_context(default_file)),
        certs={"www.example.com": custom_file},
    )
    try:
        c, cert = await tls_client(s.router.tls_port, "app.kiku.test", kiku_ca)
        assert names(cert) == ["*.kiku.test", "kiku.test"]
        response = await c.get(host="app.kiku.test")
        assert response.status == 200
        seen = dict(response.json()["headers"])
        assert seen["X-Forwarded-Proto"] == "https"
        assert seen["X-Forwarded-Port"] == str(s.router.tls_port)
        line = (await s.wait_log())[0]
        assert line.endswith(" protocol=https"), line
        c.close()

        c, cert = await tls_client(s.router.tls_port, "www.example.com", user_ca)
        assert names(cert) == ["www.example.com"]
        assert (await c.get(host="www.example.com")).status == 200
        c.close()

        plain = await s.client()  # the plain port still says http
        seen = dict((await plain.get(host="app.kiku.test")).json()["headers"])
        assert seen["X-Forwarded-Proto"] == "http"
        assert seen["X-Forwarded-Port"] == str(s.router.port)
        plain.close()
    finally:
        await teardown(s, d)
        os.unlink(default_file)
        os.unlink(custom_file)


@run
async def test_unknown_names_get_the_default_and_new_certs_arrive_by_feed() -> None:
    kiku_ca, user_ca = TestCA(), TestCA()
    default = kiku_ca.issue("*.kiku.test", "kiku.test")
    default_file = _files(default.cert, default.key)
    wildcard = user_ca.issue("*.shop.example")
    wildcard_file = _files(wildcard.cert, wildcard.key)
    d = await Dyno().start()
    r = route("app", d.backend)
    s = await stack(
        routes={"*.shop.example": r},
        certificates=Certificates(server_context(default_file)),
    )
    try:
        c, cert = await tls_client(s.router.tls_port, "kiku.test", kiku_ca)
        assert names(cert) == ["*.kiku.test", "kiku.test"]
        c.close()
        s.feed.certs = {"*.shop.example": wildcard_file, "broken.example": "/no/such/file"}
        await s.routes({"*.shop.example": r})
        c, cert = await tls_client(s.router.tls_port, "eu.shop.example", user_ca)
        assert names(cert) == ["*.shop.example"]
        assert (await c.get(host="eu.shop.example")).status == 200
        c.close()
        c, cert = await tls_client(s.router.tls_port, "broken.example", kiku_ca, False)
        assert names(cert) == ["*.kiku.test", "kiku.test"]  # not loadable: the default
        c.close()
    finally:
        await teardown(s, d)
        os.unlink(default_file)
        os.unlink(wildcard_file)
