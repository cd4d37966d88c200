"""The k8s_audit webhook over real HTTPS, with a CA, server and client certificates made for the
test: upstream's single PEM and separate certificate/key files, mutual TLS refusing clients
without an accepted certificate, the bearer token, a plain-HTTP client on the HTTPS port, and
start-up errors of a bad TLS or token configuration."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("cryptography", reason="the HTTPS tests make their certificates with it")

import aiohttp
import orjson

from falconet_k8s_audit.settings import SourceError
from falconet_k8s_audit.source import open_source
from falconet_k8s_audit.webhook import WebhookStream

from ..outputs.certs import Pki, make_pki
from .helpers import audit_event, source_context

DEADLINE_S = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates of a CA the server does not trust."""
    return make_pki(tmp_path_factory.mktemp("other-pki"))


@pytest.fixture(scope="module")
def single_pem(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Upstream's falco.pem: the key and the certificate in one file."""
    path = tmp_path_factory.mktemp("pem") / "falco.pem"
    path.write_bytes(pki.server_key.read_bytes() + pki.server_cert.read_bytes())
    return path


@pytest.fixture(scope="module")
def single_pem_cert_first(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, certificate first (as ``cat cert.pem key.pem`` writes it)."""
    path = tmp_path_factory.mktemp("pem") / "falco.pem"
    path.write_bytes(pki.server_cert.read_bytes() + pki.server_key.read_bytes())
    return path


def client_tls(pki: Pki, *, cert: Pki | None = None) -> ssl.SSLContext:
    """Trusts ``pki``'s CA; presents ``cert``'s client certificate when given."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert is not None:
        context.load_cert_chain(cert.client_cert, cert.client_key)
    return context


@contextlib.asynccontextmanager
async def https_webhook(init_config: Mapping[str, Any]
                        ) -> AsyncIterator[tuple[WebhookStream, Any, str]]:
    ctx = source_context("https://127.0.0.1:0/k8s-audit", dict(init_config))
    stream = cast(WebhookStream, open_source(ctx))
    await stream.start()
    try:
        yield stream, ctx, f"https://127.0.0.1:{stream.port}/k8s-audit"
    finally:
        await stream.aclose()


async def post(url: str, doc: Any, tls: ssl.SSLContext | bool,
               headers: Mapping[str, str] | None = None) -> tuple[int, str, Mapping[str, str]]:
    async with aiohttp.ClientSession() as session, \
            session.post(url, data=orjson.dumps(doc), ssl=tls,
                         headers={"Content-Type": "application/json", **(headers or {})}) as resp:
        return resp.status, await resp.text(), resp.headers


async def next_ids(stream: WebhookStream) -> list[str]:
    batch = await asyncio.wait_for(anext(stream), DEADLINE_S)
    return [event.payload["auditID"] for event in batch]


async def counted(ctx: Any, reason: str, times: int) -> None:
    """Wait until ``reason`` was counted ``times`` (handshakes end after the client gives up)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while ctx.counters.rejected.get(reason, 0) < times:
        assert asyncio.get_running_loop().time() < deadline, ctx.counters.rejected
        await asyncio.sleep(0.02)


# --- certificates -------------------------------------------------------------------------------

@pytest.mark.parametrize("pem", ["single_pem", "single_pem_cert_first"])
def test_upstream_single_pem_serves_https(pki: Pki, pem: str,
                                          request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(pem)

    async def scenario() -> None:
        async with https_webhook({"sslCertificate": str(path)}) as (stream, ctx, url):
            assert (await post(url, audit_event("tls1"), client_tls(pki)))[:2] == (200, "")
            assert await next_ids(stream) == ["tls1"]
            assert ctx.log.messages("info") == [
                f"k8s audit webhook listening on https://127.0.0.1:{stream.port}/k8s-audit"]

    asyncio.run(scenario())


def test_separate_certificate_and_key_files_serve_https(pki: Pki) -> None:
    async def scenario() -> None:
        init = {"sslCertificate": str(pki.server_cert), "sslKey": str(pki.server_key)}
        async with https_webhook(init) as (stream, _, url):
            assert (await post(url, audit_event("tls2"), client_tls(pki)))[0] == 200
            assert await next_ids(stream) == ["tls2"]

    asyncio.run(scenario())


def test_a_plain_http_client_on_the_https_port_fails_and_the_server_keeps_serving(
        pki: Pki, single_pem: Path) -> None:
    async def scenario() -> None:
        async with https_webhook({"sslCertificate": str(single_pem)}) as (stream, ctx, url):
            with pytest.raises(aiohttp.ClientError):
                await post(url.replace("https://", "http://"), audit_event("plain"), False)
            await counted(ctx, "tls_handshake_failed", 1)
            assert (await post(url, audit_event("after"), client_tls(pki)))[0] == 200
            assert await next_ids(stream) == ["after"]
            assert ctx.counters.rejected == {"tls_handshake_failed": 1}
            assert [(msg, kw) for _, msg, kw in ctx.log.records if "TLS" in msg] == [
                ("webhook TLS handshake failed",
                 {"reason": "tls_handshake_failed", "error": "HTTP_REQUEST"})]

    asyncio.run(scenario())


# --- mutual TLS ---------------------------------------------------------------------------------

def test_mutual_tls_refuses_clients_without_an_accepted_certificate(
        pki: Pki, other_pki: Pki) -> None:
    async def scenario() -> None:
        init = {"sslCertificate": str(pki.server_cert), "sslKey": str(pki.server_key),
                "sslClientCA": str(pki.ca_cert)}
        async with https_webhook(init) as (stream, ctx, url):
            with pytest.raises(aiohttp.ClientError):
                await post(url, audit_event("no-cert"), client_tls(pki))
            await counted(ctx, "tls_handshake_failed", 1)
            with pytest.raises(aiohttp.ClientError):  # a certificate of another CA
                await post(url, audit_event("other-ca"), client_tls(pki, cert=other_pki))
            await counted(ctx, "tls_handshake_failed", 2)
            assert (await post(url, audit_event("api-server"),
                               client_tls(pki, cert=pki)))[:2] == (200, "")
            assert await next_ids(stream) == ["api-server"]
            assert stream.queue.events == 0  # nothing of the refused clients was queued
            assert ctx.counters.rejected == {"tls_handshake_failed": 2}
            assert ctx.log.messages("info") == [
                f"k8s audit webhook listening on https://127.0.0.1:{stream.port}/k8s-audit, "
                "client certificate required"]

    asyncio.run(scenario())


# --- bearer token -------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["webhookToken", "webhookTokenFile"])
def test_the_bearer_token_is_enforced(pki: Pki, single_pem: Path, tmp_path: Path,
                                      source: str) -> None:
    token = "s3cr3t-t0ken"
    if source == "webhookTokenFile":
        (tmp_path / "token").write_text(token + "\n")
        init = {"sslCertificate": str(single_pem), "webhookTokenFile": str(tmp_path / "token")}
    else:
        init = {"sslCertificate": str(single_pem), "webhookToken": token}

    async def scenario() -> None:
        async with https_webhook(init) as (stream, ctx, url):
            tls = client_tls(pki)
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": f"Basic {token}"},
                            {"Authorization": f"Bearer {token}x"}):
                status, text, answer = await post(url, audit_event("intruder"), tls, headers)
                assert (status, text, answer["WWW-Authenticate"]) == (
                    401, "unauthorized: a valid bearer token is required\n", "Bearer")
            assert stream.queue.events == 0
            assert (await post(url, audit_event("api-server"), tls,
                               {"Authorization": f"Bearer {token}"}))[:2] == (200, "")
            assert await next_ids(stream) == ["api-server"]
            assert ctx.counters.rejected == {"unauthorized": 4}
            assert ctx.log.messages("info") == [
                f"k8s audit webhook listening on https://127.0.0.1:{stream.port}/k8s-audit, "
                "bearer token required"]

    asyncio.run(scenario())


# --- configuration errors stop start-up ---------------------------------------------------------

def test_tls_and_token_misconfigurations_fail_when_the_source_is_opened(
        pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    empty = tmp_path / "empty-token"
    empty.write_text(" \n")
    url = "https://127.0.0.1:0/k8s-audit"
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "sslCertificate: no such file: /etc/falco/falco.pem"),
        ({"sslCertificate": str(missing)}, f"sslCertificate: no such file: {missing}"),
        ({"sslCertificate": str(pki.server_cert), "sslKey": str(missing)},
         f"sslKey: no such file: {missing}"),
        ({"sslCertificate": str(not_pem)},
         f"sslCertificate: cannot load a certificate and key from {not_pem} (certificate and "
         "key in one PEM): [SSL] PEM lib"),
        ({"sslCertificate": str(pki.server_cert), "sslKey": str(pki.server_key),
          "sslClientCA": str(missing)},
         f"sslClientCA: cannot load CA certificates from {missing}: [Errno 2] No such file or "
         "directory"),
        ({"webhookToken": "a", "webhookTokenFile": str(empty)},
         "init_config: set webhookToken or webhookTokenFile, not both"),
        ({"webhookTokenFile": str(empty)}, f"webhookTokenFile: {empty} is empty"),
        ({"webhookTokenFile": str(missing)},
         f"webhookTokenFile: cannot read {missing}: No such file or directory"),
    ]
    if Path("/etc/falco/falco.pem").exists():
        cases = cases[1:]  # the default certificate exists on this machine
    for init, message in cases:
        with pytest.raises(SourceError) as err:
            open_source(source_context(url, init))
        assert str(err.value).startswith(message), (init, str(err.value))
