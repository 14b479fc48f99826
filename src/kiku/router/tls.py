"""`Certificates`: which certificate the HTTPS port shows, chosen by the client's SNI name.

The default is kiku's own (`*.DOMAIN` and `DOMAIN`, signed by its local CA); custom domains
with a certificate of their own (`kiku certs:add`) arrive in the route feed as
`"certs": {"www.example.com": "/data/tls/sni/<id>-<hash>.pem"}`, each file (0600) holding
the chain and the key. A new file name means new contents, so loaded contexts are kept by
file name. Nothing here ever logs a key or a file's contents.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable, Mapping


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    # HTTP/1.1 only (HEROKU_BEHAVIOUR §3.9): a client asking for h2 must fall back.
    context.set_alpn_protocols(["http/1.1"])
    return context


class Certificates:
    def __init__(self, default: ssl.SSLContext, warn: Callable[[str], None] | None = None) -> None:
        self.default = default
        self.default.sni_callback = self._choose
        self._warn = warn if warn is not None else _stderr
        self._by_host: dict[str, ssl.SSLContext] = {}
        self._loaded: dict[str, ssl.SSLContext] = {}

    def apply(self, certs: Mapping[str, str]) -> None:
        """Take the feed's `hostname -> file` map; files already loaded are not read again."""
        loaded: dict[str, ssl.SSLContext] = {}
        by_host: dict[str, ssl.SSLContext] = {}
        for host, path in certs.items():
            context = loaded.get(path) or self._loaded.get(path)
            if context is None:
                try:
                    context = server_context(path)
                except (OSError, ssl.SSLError, ValueError) as exc:
                    # The reason only (file missing, no key...), never the file's text.
                    self._warn(f"router: certificate for {host} not loaded: {type(exc).__name__}")
                    continue
                context.sni_callback = self._choose
            loaded[path] = context
            by_host[host.lower()] = context
        self._loaded, self._by_host = loaded, by_host

    def lookup(self, server_name: str) -> ssl.SSLContext | None:
        context = self._by_host.get(server_name)
        if context is None:
            _, dot, parent = server_name.partition(".")
            if dot:
                context = self._by_host.get("*." + parent)
        return context

    def _choose(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        if server_name:
            context = self.lookup(server_name.lower())
            if context is not None and context is not sslobj.context:
                sslobj.context = context


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
