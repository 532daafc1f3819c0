"""The web app's TLS certificate: the owner's, or a self-signed one made on first start.

In: ``web.cert_file``/``web.key_file`` (both or neither) and ``web.state_dir``.  Out: the
paths of a PEM certificate and key for the server; a made key is 0600 and never replaced
(so a browser that trusted it once keeps trusting it).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path

from edge.config import WebConfig
from edge.errors import ConfigError
from edge.files import atomic_write_bytes

VALID_DAYS = 3650


def certificate(cfg: WebConfig) -> tuple[Path, Path]:
    """(cert, key): the configured pair, or ``state_dir``'s self-signed pair (made if missing)."""
    if cfg.cert_file is not None and cfg.key_file is not None:
        for field, value in (("web.cert_file", cfg.cert_file), ("web.key_file", cfg.key_file)):
            if not Path(value).is_file():
                raise ConfigError(f"{value}: {field}: no such file")
        return Path(cfg.cert_file), Path(cfg.key_file)
    cert, key = Path(cfg.state_dir) / "tls.crt", Path(cfg.state_dir) / "tls.key"
    if not (cert.exists() and key.exists()):
        make_self_signed(cert, key)
    return cert, key


def make_self_signed(cert_path: Path, key_path: Path, host: str | None = None) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    host = host or socket.gethostname()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"facegate on {host}")])
    now = dt.datetime.now(dt.UTC)
    alt = x509.SubjectAlternativeName(
        [
            x509.DNSName(host),
            x509.DNSName(f"{host}.local"),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(alt, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write_bytes(key_path, key_pem, mode=0o600)
    atomic_write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
