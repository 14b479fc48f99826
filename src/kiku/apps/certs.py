"""Certificates users give for their custom domains (`kiku certs:add CRT KEY`, SNI endpoints).

`parse()` checks a PEM chain and its key the way a TLS server will use them: the chain's
first certificate is the server's, the key is unencrypted and belongs to it, and it has not
expired. Errors say what to fix and never quote the key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kiku.errors import InvalidParams

MAX_PEM = 64 * 1024


@dataclass(frozen=True)
class Certificate:
    domains: tuple[str, ...]  # the names it serves (subjectAltName, else the common name)
    subject: str
    issuer: str
    starts_at: dt.datetime
    expires_at: dt.datetime
    self_signed: bool


def parse(chain: str, key: str, now: dt.datetime | None = None) -> Certificate:
    if len(chain) > MAX_PEM or len(key) > MAX_PEM:
        raise InvalidParams(f"A certificate chain or key is at most {MAX_PEM // 1024} KB.")
    try:
        certs = x509.load_pem_x509_certificates(chain.encode())
    except ValueError as exc:
        raise InvalidParams(
            "The certificate chain is not PEM (-----BEGIN CERTIFICATE----- ...)."
        ) from exc
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except TypeError as exc:
        raise InvalidParams("The private key is encrypted; give it without a passphrase.") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidParams("The private key is not a PEM private key.") from exc
    leaf = certs[0]
    pem, spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(pem, spki) != private.public_key().public_bytes(pem, spki):
        raise InvalidParams("The private key does not match the certificate.")
    now = now or dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc <= now:
        raise InvalidParams(
            f"The certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}; give a current one."
        )
    described = describe(chain)
    if not described.domains:
        raise InvalidParams("The certificate names no domain (no subjectAltName, no CN).")
    return described


def describe(chain: str) -> Certificate:
    """What the chain's first certificate says (the chain was checked when it was given)."""
    leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    return Certificate(
        domains=_names(leaf),
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        starts_at=leaf.not_valid_before_utc,
        expires_at=leaf.not_valid_after_utc,
        self_signed=leaf.issuer == leaf.subject,
    )


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return tuple(str(a.value).lower() for a in common)
    return tuple(name.lower() for name in san.value.get_values_for_type(x509.DNSName))


def covers(domains: tuple[str, ...] | list[str], host: str) -> bool:
    """Whether a certificate for `domains` is valid for `host` (one wildcard label at most)."""
    if host in domains:
        return True
    _, dot, rest = host.partition(".")
    return bool(dot) and f"*.{rest}" in domains
