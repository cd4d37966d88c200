"""Upstream's k8s audit regression cases, live: every case of ``cases.yaml`` POSTed to the
webhook of a running ``falconet`` (the real command, a subprocess) gives exactly upstream's
alerts, judged by the same helpers as the replayed cases (``upstream_cases.py``).

One falconet runs per set of rules files (cases are grouped by it, ten processes for the whole
table): a case's trace is POSTed as the API server's batching backend sends it, an ``EventList``
of its events (a trace that is not audit events goes line by line, as received). falconet's
``/metrics`` says when the case is done: its events were evaluated (``falconet_events_total``)
and every alert raised so far reached stdout (``falconet_output_sent_total``); the JSON alert
lines and log lines written since the previous case are that case's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.processes import stop, wait_until

from .upstream_cases import (
    FALCO_YAML,
    SKIP_REASON,
    Case,
    available,
    case_rules_args,
    check_alerts,
    load_cases,
    parse_alerts,
)

pytestmark = pytest.mark.skipif(not available(), reason=SKIP_REASON)

DEADLINE_S = 60.0
#: grouped by rules files (stable: file order within a group), so that a group shares a process
CASES = sorted(load_cases(), key=lambda c: [str(r) for r in c.rules]) if available() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http(url: str, body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def metric_sum(text: str, name: str, label: str = "") -> int:
    """The sum of the samples of ``name`` whose labels contain ``label``."""
    return sum(int(float(ln.rsplit(" ", 1)[1])) for ln in text.splitlines()
               if ln.startswith((name + " ", name + "{")) and label in ln)


def requests_for(trace: Path) -> list[tuple[bytes, int]]:
    """(body, events it holds) of the POSTs replaying ``trace``."""
    lines = [ln for ln in trace.read_bytes().splitlines() if ln.strip()]
    try:
        docs = [orjson.loads(ln) for ln in lines]
    except orjson.JSONDecodeError:
        docs = []
    if docs and all(isinstance(d, dict) and d.get("kind") == "Event" for d in docs):
        batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": docs}
        return [(orjson.dumps(batch), len(docs))]
    return [(ln, 0) for ln in lines]


def accepted(status: int, text: str, sent: int) -> int:
    """Events the webhook queued, from its answer."""
    if status == 200 and text == "":
        return sent
    if text.startswith("accepted "):
        return int(text.split()[1])
    return 0


class LiveFalconet:
    """``falconet -c falco.yaml -r ...`` serving the webhook, with /metrics on."""

    def __init__(self, directory: Path, rules_args: list[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.hook_port, self.web_port = free_port(), free_port()
        config = yaml.safe_load(FALCO_YAML)
        config["plugins"][0]["open_params"] = f"http://127.0.0.1:{self.hook_port}/k8s-audit"
        config["webserver"] = {"enabled": True, "listen_address": "127.0.0.1",
                               "listen_port": self.web_port, "prometheus_metrics_enabled": True}
        config["metrics"] = {"enabled": True, "output_rule": False}
        path = directory / "falco.yaml"
        path.write_text(yaml.safe_dump(config))
        self.stdout, self.stderr = directory / "stdout.txt", directory / "stderr.txt"
        self._out_at = self._err_at = 0
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "falconet.cli", "-c", str(path), *rules_args],
                stdout=out, stderr=err, cwd=directory,
                env={**os.environ, "TZ": "UTC", "PYTHONUNBUFFERED": "1"})
        self.wait_until("the webhook and webserver to listen",
                        lambda: listening(self.hook_port) and listening(self.web_port))
        self.events = 0

    def wait_until(self, what: str, ok: Callable[[], bool]) -> None:
        wait_until(what, ok, self.proc, self.stderr, DEADLINE_S)

    def metrics(self) -> str:
        return http(f"http://127.0.0.1:{self.web_port}/metrics")[1]

    def run(self, case: Case) -> tuple[list[dict[str, Any]], str]:
        """POST the case's trace; (its JSON alerts, the log written meanwhile)."""
        for body, sent in requests_for(case.trace):
            status, text = http(f"http://127.0.0.1:{self.hook_port}/k8s-audit", body)
            assert status in (200, 400), (status, text)
            self.events += accepted(status, text, sent)

        def done() -> bool:
            text = self.metrics()
            return (metric_sum(text, "falconet_events_total", 'source="k8s_audit"') == self.events
                    and metric_sum(text, "falconet_output_sent_total", 'output="stdout"')
                    == metric_sum(text, "falconet_alerts_total"))

        self.wait_until(f"case {case.id} to be evaluated and its alerts written", done)
        out, err = self.stdout.read_text(), self.stderr.read_text()
        new_out, new_err = out[self._out_at:], err[self._err_at:]
        self._out_at, self._err_at = len(out), len(err)
        return parse_alerts(new_out), new_err

    def stop(self) -> None:
        stop(self.proc, DEADLINE_S)
        assert self.proc.returncode == 0, self.stderr.read_text()


class Pool:
    """One falconet at a time, for the rules files of the current group of cases."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.rules: list[str] | None = None
        self.current: LiveFalconet | None = None

    def get(self, case: Case) -> LiveFalconet:
        rules = case_rules_args(case)
        if rules != self.rules or self.current is None:
            self.close()
            self.rules = rules
            self.current = LiveFalconet(self.base / case.id, rules)
        return self.current

    def close(self) -> None:
        if self.current is not None:
            current, self.current = self.current, None
            current.stop()


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    live = Pool(tmp_path_factory.mktemp("live"))
    try:
        yield live
    finally:
        live.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_gives_upstreams_alerts_through_the_webhook(case: Case, pool: Pool) -> None:
    alerts, log = pool.get(case).run(case)
    check_alerts(case, alerts, log)


def test_every_case_is_run_live() -> None:
    assert sorted(c.id for c in CASES) == sorted(c.id for c in load_cases())
    assert len(CASES) == 46


def test_a_trace_of_events_is_posted_as_one_event_list(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    docs = [{"kind": "Event", "auditID": "a"}, {"kind": "Event", "auditID": "b"}]
    trace.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n\n")
    [(body, sent)] = requests_for(trace)
    assert (orjson.loads(body)["items"], sent) == (docs, 2)
    trace.write_bytes(b'{"kind": 0}\n')
    assert requests_for(trace) == [(b'{"kind": 0}', 0)]
    assert accepted(200, "", 3) == 3
    assert accepted(200, "accepted 2 of 3 audit events\nrefused: x", 3) == 2
    assert accepted(400, "accepted 0 of 1 audit events\nrefused: x", 1) == 0
    assert accepted(400, "bad request: invalid JSON: x", 1) == 0
