"""The real ``falconet`` command polling ``s3://`` through a throttling HTTP proxy in front of a
real ``moto_server``: throttled downloads are retried and the alerts still come, and falconet's
own ``/metrics`` shows the throttled requests and the bad objects by reason."""

from __future__ import annotations

import gzip
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.processes import stop, wait_until

from .helpers import log_file, rec
from .moto import (
    BUCKET,
    Moto,
    ThrottlingProxy,
    free_port,
    gz_log,
)
from .test_checkpoint_end_to_end import (
    DEADLINE_S,
    alerts,
    environment,
    falco_yaml,
)


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def test_throttling_and_bad_objects_show_in_metrics_while_alerts_flow(moto: Moto,
                                                                      tmp_path: Path) -> None:
    moto.bucket(BUCKET, {
        "AWSLogs/1.json.gz": gz_log(rec("one"), rec("two")),
        "AWSLogs/2-corrupt.json.gz": gzip.compress(log_file(rec("lost")))[:25],
        "AWSLogs/3.json": log_file(rec("three")),
    })
    web = free_port()
    with ThrottlingProxy(moto.url, throttle=3, match="/AWSLogs/3.json") as proxy:
        config = falco_yaml(tmp_path, moto, s3PollInterval=0.5)
        text = config.read_text().replace(moto.url, proxy.url).replace(
            "webserver: {enabled: false}",
            f"webserver: {{enabled: true, listen_address: 127.0.0.1, listen_port: {web}, "
            "prometheus_metrics_enabled: true}\nmetrics: {enabled: true, output_rule: false}")
        config.write_text(text)
        stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with stdout.open("w") as out, stderr.open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "falconet.cli", "-c", str(config)],
                                    stdout=out, stderr=err, text=True, cwd=tmp_path,
                                    env=environment())
        try:
            wait_until("three events", lambda: 'falconet_events_total{source="aws_cloudtrail"} 3'
                     in scrape(web), proc, stderr)
            metrics = [ln for ln in scrape(web).splitlines()
                       if "aws_cloudtrail" in ln and not ln.startswith("#")
                       and ("rejected" in ln or "malformed" in ln)]
        finally:
            stop(proc, DEADLINE_S)
        assert proxy.throttled == 3
    assert proc.returncode == 0, stderr.read_text()
    assert alerts(stdout.read_text()) == ["one", "two", "three"]
    assert metrics == [
        'falconet_events_malformed_total{source="aws_cloudtrail"} 1',
        'falconet_source_rejected_total{reason="aws_throttled",source="aws_cloudtrail"} 3',
        'falconet_source_rejected_total{reason="unreadable_gzip",source="aws_cloudtrail"} 1',
    ]
    log = stderr.read_text()
    assert log.count(f"cannot read s3://{BUCKET}/AWSLogs/3.json: SlowDown: Please reduce your "
                     "request rate.; retrying") == 3
    assert "unreadable gzip file skipped" in log
