"""The real ``falconet`` command with a falco.yaml that loads k8saudit with a webhook
``open_params``: an audit event recorded from a cluster is POSTed as the API server posts it, its
alert appears on stdout, and falconet's own /metrics counts the events and the refused input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.processes import stop, wait_until

from .helpers import TRACES, json_error

REPO = Path(__file__).resolve().parents[2]
TRACE = TRACES / "create_nginx_pod_privileged.json"
DEADLINE_S = 60.0

pytestmark = pytest.mark.skipif(not TRACE.is_file(), reason=f"recorded audit event not found at "
                                f"{TRACE} (shared/ is not beside main)")

RULES = """\
- rule: Pod created
  desc: a pod is created
  condition: ka.verb = create and ka.target.resource = pods
  output: pod created (user=%ka.user.name ns=%ka.target.namespace id=%ka.auditid)
  priority: NOTICE
  source: k8s_audit
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_falconet_serves_the_webhook_alerts_on_stdout_and_counts_in_metrics(
        tmp_path: Path) -> None:
    hook_port, web_port = free_port(), free_port()
    (tmp_path / "rules.yaml").write_text(RULES)
    config = tmp_path / "falco.yaml"
    config.write_text(f"""\
plugins:
  - name: k8saudit
    library_path: libk8saudit.so
    init_config:
      maxEventSize: 262144
    open_params: "http://127.0.0.1:{hook_port}/k8s-audit"
  - name: json
    library_path: libjson.so
load_plugins: [k8saudit, json]
rules_files: [{tmp_path / "rules.yaml"}]
stdout_output: {{enabled: true}}
syslog_output: {{enabled: false}}
watch_config_files: false
webserver:
  enabled: true
  listen_address: 127.0.0.1
  listen_port: {web_port}
  prometheus_metrics_enabled: true
metrics:
  enabled: true
  output_rule: false
""")
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("w") as out, stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "falconet.cli", "-c", str(config)],
                                stdout=out, stderr=err, text=True, cwd=tmp_path,
                                env={**os.environ, "TZ": "UTC", "PYTHONUNBUFFERED": "1"})
    try:
        wait_until("the webhook to listen", lambda: listening(hook_port), proc, stderr)
        wait_until("the webserver to listen", lambda: listening(web_port), proc, stderr)
        hook = f"http://127.0.0.1:{hook_port}/k8s-audit"
        doc = orjson.loads(TRACE.read_bytes().splitlines()[0])
        batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [doc]}
        assert request(hook, orjson.dumps(batch)) == (200, "")
        assert request(hook, b"{not json") == (
            400, f"bad request: invalid JSON: {json_error(b'{not json')}\n")
        assert request(hook, orjson.dumps(doc), "text/plain") == (400, "wrong Content Type\n")
        metrics_url = f"http://127.0.0.1:{web_port}/metrics"

        def scraped() -> str:
            return request(metrics_url)[1]

        wait_until("the event to be evaluated",
                   lambda: 'falconet_events_total{source="k8s_audit"} 1' in scraped(), proc,
                   stderr)
        text = scraped()
        assert [ln for ln in text.splitlines() if "k8s_audit" in ln and not ln.startswith("#")
                and "rules_matches" not in ln] == [
            'falconet_events_total{source="k8s_audit"} 1',
            'falconet_event_batches_total{source="k8s_audit"} 1',
            'falconet_events_malformed_total{source="k8s_audit"} 1',
            'falconet_events_dropped_total{source="k8s_audit"} 0',
            'falconet_source_rejected_total{reason="invalid_json",source="k8s_audit"} 1',
            'falconet_source_rejected_total{reason="wrong_content_type",source="k8s_audit"} 1',
        ]
        assert ('falcosecurity_falco_rules_matches_total{priority="5",rule_name="Pod created",'
                'source="k8s_audit"} 1') in text.splitlines()
    finally:
        stop(proc, DEADLINE_S)
    assert proc.returncode == 0, stderr.read_text()
    alerts = [ln for ln in stdout.read_text().splitlines() if "pod created" in ln]
    assert alerts == [
        "14:09:12.581541000: Notice pod created (user=system:serviceaccount:kube-system:"
        "replicaset-controller ns=default id=a362d22b-db3c-4590-9505-23782f12925f)"]
    log = stderr.read_text()
    assert f"k8s audit webhook listening on http://127.0.0.1:{hook_port}/k8s-audit" in log
    assert "webhook request refused: wrong Content Type" in log
    assert not listening(hook_port)
