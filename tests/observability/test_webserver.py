"""The webserver over real HTTP(S) on 127.0.0.1: health, versions, metrics, TLS, errors."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from pathlib import Path

import pytest

from falconet.config import ConfigError, load_config
from falconet.prometheus import render_prometheus
from falconet.stats import EngineStats
from falconet.webserver import WebServerError, start_webserver, versions_info

from .helpers import config, get, write_self_signed_pem

VERSIONS = versions_info({"k8saudit": "0.11.0"})


def test_healthz_body_and_content_type_as_upstream() -> None:
    async def run() -> tuple[int, str, str]:
        server = await start_webserver(config().webserver, EngineStats(), VERSIONS, lambda: True)
        try:
            return await get(f"http://127.0.0.1:{server.port}/healthz")
        finally:
            await server.stop()

    assert asyncio.run(run()) == (200, "application/json", '{"status": "ok"}')


def test_healthz_endpoint_is_configurable_and_reports_unhealthy() -> None:
    async def run() -> list[tuple[int, str, str]]:
        settings = config("webserver.k8s_healthz_endpoint=/live").webserver
        server = await start_webserver(settings, EngineStats(), VERSIONS, lambda: False)
        try:
            base = f"http://127.0.0.1:{server.port}"
            return [await get(base + "/live"), (*(await get(base + "/healthz"))[:1], "", "")]
        finally:
            await server.stop()

    assert asyncio.run(run()) == [(503, "application/json", '{"status": "unhealthy"}'),
                                  (404, "", "")]


def test_versions_has_upstreams_keys() -> None:
    async def run() -> tuple[int, str, str]:
        server = await start_webserver(config().webserver, EngineStats(), VERSIONS, lambda: True)
        try:
            return await get(f"http://127.0.0.1:{server.port}/versions")
        finally:
            await server.stop()

    assert asyncio.run(run()) == (200, "application/json", (
        '{"default_driver_version":"","driver_api_version":"","driver_schema_version":"",'
        '"engine_version":"62","engine_version_semver":"0.62.0","falco_version":"0.1.0",'
        '"libs_version":"","plugin_api_version":"3.11.0",'
        '"plugin_versions":{"k8saudit":"0.11.0"}}'))


def _stats() -> EngineStats:
    stats = EngineStats(started_ns=1_000_000_000)
    stats.source("k8s_audit").events = 12
    stats.alerts_by_rule["Exec into pod"] = 2
    stats.rule_priority["Exec into pod"] = "Notice"
    stats.rule_source["Exec into pod"] = "k8s_audit"
    return stats


def _without_uptime(text: str) -> str:
    return re.sub(r"(?m)^(falcosecurity_falco_duration_seconds_total) \d+$", r"\1 N", text)


def test_metrics_when_prometheus_and_metrics_are_enabled() -> None:
    stats = _stats()

    async def run() -> tuple[int, str, str]:
        c = config("webserver.prometheus_metrics_enabled=true", "metrics.enabled=true")
        server = await start_webserver(c.webserver, stats, VERSIONS, lambda: True,
                                       metrics=c.metrics)
        try:
            return await get(f"http://127.0.0.1:{server.port}/metrics")
        finally:
            await server.stop()

    status, content_type, body = asyncio.run(run())
    assert (status, content_type) == (200, "text/plain; version=0.0.4")
    assert _without_uptime(body) == _without_uptime(render_prometheus(stats, version="0.1.0"))
    assert ('falcosecurity_falco_rules_matches_total{priority="5",rule_name="Exec into pod",'
            'source="k8s_audit"} 2\n') in body


@pytest.mark.parametrize("options", [
    ("webserver.prometheus_metrics_enabled=true",),  # upstream also needs metrics.enabled
    ("metrics.enabled=true",),
])
def test_no_metrics_endpoint_unless_both_keys_are_true(options: tuple[str, ...]) -> None:
    async def run() -> int:
        c = config(*options)
        server = await start_webserver(c.webserver, _stats(), VERSIONS, lambda: True,
                                       metrics=c.metrics)
        try:
            return (await get(f"http://127.0.0.1:{server.port}/metrics"))[0]
        finally:
            await server.stop()

    assert asyncio.run(run()) == 404


def test_https_with_one_pem_holding_key_and_certificate(tmp_path: Path) -> None:
    pem = tmp_path / "falco.pem"
    write_self_signed_pem(pem)

    async def run() -> tuple[str, tuple[int, str, str]]:
        settings = config("webserver.ssl_enabled=true",
                          f"webserver.ssl_certificate={pem}").webserver
        server = await start_webserver(settings, EngineStats(), VERSIONS, lambda: True)
        try:
            client = ssl.create_default_context(cafile=str(pem))
            return server.scheme, await get(f"https://127.0.0.1:{server.port}/healthz",
                                            ssl_context=client)
        finally:
            await server.stop()

    assert asyncio.run(run()) == ("https", (200, "application/json", '{"status": "ok"}'))


def test_bad_certificate_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "falco.pem"
    bad.write_text("not a certificate\n")
    settings = config("webserver.ssl_enabled=true", f"webserver.ssl_certificate={bad}").webserver
    with pytest.raises(WebServerError, match=r"^webserver\.ssl_certificate: cannot load a key "
                                             rf"and certificate from {re.escape(str(bad))}: "):
        asyncio.run(start_webserver(settings, EngineStats(), VERSIONS, lambda: True))
    missing = config("webserver.ssl_enabled=true",
                     f"webserver.ssl_certificate={tmp_path / 'none.pem'}").webserver
    with pytest.raises(WebServerError, match=r"^webserver\.ssl_certificate: no such file: "):
        asyncio.run(start_webserver(missing, EngineStats(), VERSIONS, lambda: True))


def test_port_in_use_names_address_and_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = config(f"webserver.listen_port={port}").webserver
        with pytest.raises(WebServerError) as info:
            asyncio.run(start_webserver(settings, EngineStats(), VERSIONS, lambda: True))
    assert str(info.value) == (
        f"webserver: cannot listen on 127.0.0.1:{port}: Address already in use")


def test_listen_address_must_be_an_ip_address() -> None:
    with pytest.raises(ConfigError, match=r'^webserver\.listen_address: "localhost" is not a '
                                          r'valid IP address$'):
        load_config(None, ["webserver.listen_address=localhost"], env={})
    assert load_config(None, ["webserver.listen_address=::1"], env={}).webserver.listen_address \
        == "::1"
