"""Shared by the observability tests: typed settings from -o options, a certificate, a client."""

from __future__ import annotations

import datetime
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from falconet.config import Config, load_config


def config(*options: str) -> Config:
    """falco.yaml defaults with ``options``; the webserver on a free loopback port."""
    return load_config(None, ["webserver.listen_address=127.0.0.1", "webserver.listen_port=0",
                              *options], env={})


async def get(url: str, *, ssl_context: ssl.SSLContext | None = None
              ) -> tuple[int, str, str]:
    """(status, Content-Type header, body) of a GET."""
    async with aiohttp.ClientSession() as session, \
            session.get(url, ssl=ssl_context if ssl_context is not None else True) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def write_self_signed_pem(path: Path) -> None:
    """One PEM with a fresh RSA key and a certificate for 127.0.0.1 (as upstream expects):
    made with ``cryptography`` when installed, else with the ``openssl`` command."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _openssl_pem(path)
    else:
        _cryptography_pem(path)


def _openssl_pem(path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("neither the cryptography package nor the openssl command is installed")
    key, cert = path.with_suffix(".key"), path.with_suffix(".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=falconet-test", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    path.write_bytes(cert.read_bytes() + key.read_bytes())


def _cryptography_pem(path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "falconet-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()))
