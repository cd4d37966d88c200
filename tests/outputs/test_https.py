"""http output over HTTPS: a CA, a server and a client certificate made for the test; server
verification by ca_cert/ca_bundle/ca_path, its failure, insecure, and mutual TLS."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("cryptography", reason="the HTTPS tests make their certificates with it")

from falconet.api import OutputError
from falconet.outputs import HttpOutput, TlsSettings

from .certs import Pki, make_pki
from .helpers import make_alert
from .receiver import Receiver

A1 = make_alert("12:00:00.000000001: Critical over TLS (x=1)")



@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_tls(pki: Pki, *, require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=pki.ca_cert)
    return ctx


def https_round(tls: TlsSettings, server_ctx: ssl.SSLContext) -> tuple[Receiver, str | None]:
    """Send A1 over HTTPS; the receiver and the error text (None when delivered)."""
    server = Receiver()

    async def scenario() -> str | None:
        out = HttpOutput(await server.start(server_ctx), tls=tls)
        try:
            await out.send([A1])
            return None
        except OutputError as exc:
            return str(exc)
        finally:
            await out.close()
            await server.stop()

    return server, asyncio.run(scenario())


def ca_folder(pki: Pki, tmp_path: Path) -> Path:
    """A ca_path folder as OpenSSL reads one: the CA under its subject-hash name."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is needed to name a CA file by its subject hash")
    digest = subprocess.run([openssl, "x509", "-subject_hash", "-noout", "-in", str(pki.ca_cert)],
                            check=True, capture_output=True, text=True).stdout.strip()
    folder = tmp_path / "cas"
    folder.mkdir()
    shutil.copy(pki.ca_cert, folder / f"{digest}.0")
    return folder


@pytest.mark.parametrize("how", ["ca_cert", "ca_bundle", "ca_path"])
def test_https_server_verified_with_the_test_ca(pki: Pki, tmp_path: Path, how: str) -> None:
    if how == "ca_path":
        tls = TlsSettings(ca_path=str(ca_folder(pki, tmp_path)))
    else:
        tls = TlsSettings(**{how: str(pki.ca_cert)})
    server, error = https_round(tls, server_tls(pki))
    assert error is None
    assert [r.body for r in server.requests] == [A1.line.encode()]


def test_https_without_the_ca_fails_verification(pki: Pki) -> None:
    server, error = https_round(TlsSettings(), server_tls(pki))
    assert error is not None and "certificate verify failed" in error
    assert error.startswith("http output: POST https://127.0.0.1:")
    assert server.requests == []


def test_https_insecure_skips_verification(pki: Pki) -> None:
    server, error = https_round(TlsSettings(insecure=True), server_tls(pki))
    assert error is None and len(server.requests) == 1


def test_mtls_client_certificate_required_by_the_server(pki: Pki) -> None:
    strict = server_tls(pki, require_client_cert=True)
    server, error = https_round(TlsSettings(ca_cert=str(pki.ca_cert)), strict)
    assert error is not None and error.startswith("http output: POST https://127.0.0.1:")
    assert server.requests == []

    tls = TlsSettings(ca_cert=str(pki.ca_cert), mtls=True, client_cert=str(pki.client_cert),
                      client_key=str(pki.client_key))
    server, error = https_round(tls, server_tls(pki, require_client_cert=True))
    assert error is None
    [r] = server.requests
    assert r.peer_cert is not None
    assert r.peer_cert["subject"] == ((("commonName", "falconet-client"),),)


def test_unreadable_ca_file_names_the_problem(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    server, error = https_round(TlsSettings(ca_cert=str(missing)), server_tls(pki))
    assert error is not None
    assert error.startswith("http output: TLS settings for https://127.0.0.1:")
    assert error.endswith("No such file or directory")
    assert server.requests == []
