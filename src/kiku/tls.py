"""kiku's own certificate authority, for the TLS its clients insist on (rendezvous, the
router's HTTPS port).

Made once per data dir: `tls/ca.pem` (give it to clients, e.g. NODE_EXTRA_CA_CERTS for the
official Heroku CLI) and a server certificate for 127.0.0.1 and localhost signed by it.
`issue()` signs more server certificates (the router's `*.DOMAIN`) with the CA's key,
`tls/ca.key`; a data dir made before kiku kept that key gets a new CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID = dt.timedelta(days=3650)


class LocalCA:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_cert = directory / "ca.pem"
        self.ca_key = directory / "ca.key"
        self.cert = directory / "server.pem"
        self.key = directory / "server.key"

    def ensure(self, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
        if self.cert.exists() and self.key.exists() and self.ca_cert.exists():
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiku local CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALID)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.ca_cert.write_bytes(ca.public_bytes(pem))
        _write_private(self.ca_key, _key_bytes(ca_key))
        self.cert.write_bytes(cert.public_bytes(pem))
        _write_private(self.key, _key_bytes(key))

    def issue(self, stem: str, hosts: tuple[str, ...]) -> tuple[Path, Path]:
        """`tls/<stem>.pem` and `tls/<stem>.key` (0600): a certificate for `hosts` (DNS
        names, `*.example.com` too) signed by this CA; kept while it still fits."""
        cert_path = self.directory / f"{stem}.pem"
        key_path = self.directory / f"{stem}.key"
        if _fits(cert_path, key_path, hosts, self.ca_cert):
            return cert_path, key_path
        if not self.ca_key.exists():  # a data dir from before the CA key was kept
            for old in (self.cert, self.key, self.ca_cert):
                old.unlink(missing_ok=True)
        self.ensure()
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + VALID, ca.not_valid_after_utc))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(key_path, _key_bytes(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _fits(cert_path: Path, key_path: Path, hosts: tuple[str, ...], ca_path: Path) -> bool:
    """Whether the certificate there is for exactly `hosts`, by the current CA, and valid
    for at least a month more."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    month = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    return (
        key_path.exists()
        and sorted(names.get_values_for_type(x509.DNSName)) == sorted(hosts)
        and cert.not_valid_after_utc > month
    )
