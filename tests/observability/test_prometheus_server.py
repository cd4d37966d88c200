"""A real Prometheus server scrapes falconet's /metrics (HTTP and HTTPS) and answers queries with
exactly the counters set in EngineStats."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from falconet.stats import EngineStats
from falconet.webserver import start_webserver, versions_info

from .helpers import config, write_self_signed_pem

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is not installed (scripts/setup installs "
                               "the Debian package when run as root)")
METRICS_ON = ("webserver.prometheus_metrics_enabled=true", "metrics.enabled=true")
WAIT_S = 60.0  # an upper bound for Prometheus to start and scrape, not an expectation


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stats_with(matches: int, events: int) -> EngineStats:
    stats = EngineStats()
    stats.alerts_by_rule["Read sensitive file untrusted"] = matches
    stats.rule_priority["Read sensitive file untrusted"] = "Warning"
    stats.rule_source["Read sensitive file untrusted"] = "syscall"
    stats.rule_tags["Read sensitive file untrusted"] = ("filesystem", "T1555")
    stats.source("syscall").events = events
    stats.source("k8s_audit").events = events * 2
    return stats


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> list[Any]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
        doc = await resp.json()
    assert doc["status"] == "success", doc
    return sorted(doc["data"]["result"], key=lambda r: str(r["metric"].get("job")))


async def query_when_scraped(session: aiohttp.ClientSession, base: str, promql: str,
                             series: int, proc: asyncio.subprocess.Process) -> list[Any]:
    """Poll until ``series`` series exist (both targets scraped), then return them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        if proc.returncode is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}")
        try:
            result = await query(session, base, promql)
            if len(result) >= series:
                return result
        except aiohttp.ClientError:
            pass  # not listening yet
        if loop.time() > deadline:
            pytest.fail(f"Prometheus had no {series} series of {promql} after {WAIT_S} s")
        await asyncio.sleep(0.25)


def samples(result: list[Any]) -> list[tuple[dict[str, str], str]]:
    return [(r["metric"], r["value"][1]) for r in result]


def test_prometheus_scrapes_http_and_https_targets(tmp_path: Path) -> None:
    pem = tmp_path / "falco.pem"
    write_self_signed_pem(pem)
    prom_port = free_port()

    Found = dict[str, list[tuple[dict[str, str], str]]]

    async def run() -> tuple[Found, str, str]:
        plain = config(*METRICS_ON)
        tls = config(*METRICS_ON, "webserver.ssl_enabled=true",
                     f"webserver.ssl_certificate={pem}")
        http_server = await start_webserver(plain.webserver, stats_with(32, 1000),
                                            versions_info(), lambda: True, metrics=plain.metrics)
        https_server = await start_webserver(tls.webserver, stats_with(7, 5),
                                             versions_info(), lambda: True, metrics=tls.metrics)
        (tmp_path / "prometheus.yml").write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: falconet
    static_configs:
      - targets: ["127.0.0.1:{http_server.port}"]
  - job_name: falconet_tls
    scheme: https
    tls_config:
      ca_file: {pem}
    static_configs:
      - targets: ["127.0.0.1:{https_server.port}"]
""")
        assert PROMETHEUS is not None
        with (tmp_path / "prometheus.log").open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{prom_port}"
        try:
            async with aiohttp.ClientSession() as session:
                found = {promql: samples(await query_when_scraped(session, base, promql, 2, proc))
                         for promql in ("falcosecurity_falco_rules_matches_total",
                                        "falcosecurity_scap_n_evts_total",
                                        'falconet_events_total{source="k8s_audit"}')}
            return (found, f"127.0.0.1:{http_server.port}",
                    f"127.0.0.1:{https_server.port}")
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
            await http_server.stop()
            await https_server.stop()

    found, http_target, tls_target = asyncio.run(run())
    rule = {"__name__": "falcosecurity_falco_rules_matches_total", "priority": "4",
            "rule_name": "Read sensitive file untrusted", "source": "syscall",
            "tag_T1555": "true", "tag_filesystem": "true"}
    assert found["falcosecurity_falco_rules_matches_total"] == [
        ({**rule, "instance": http_target, "job": "falconet"}, "32"),
        ({**rule, "instance": tls_target, "job": "falconet_tls"}, "7"),
    ]
    assert found["falcosecurity_scap_n_evts_total"] == [
        ({"__name__": "falcosecurity_scap_n_evts_total", "instance": http_target,
          "job": "falconet"}, "1000"),
        ({"__name__": "falcosecurity_scap_n_evts_total", "instance": tls_target,
          "job": "falconet_tls"}, "5"),
    ]
    assert found['falconet_events_total{source="k8s_audit"}'] == [
        ({"__name__": "falconet_events_total", "instance": http_target, "job": "falconet",
          "source": "k8s_audit"}, "2000"),
        ({"__name__": "falconet_events_total", "instance": tls_target, "job": "falconet_tls",
          "source": "k8s_audit"}, "10"),
    ]

