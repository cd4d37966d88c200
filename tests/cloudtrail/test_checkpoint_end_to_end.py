"""The real ``falconet`` command with a falco.yaml loading cloudtrail with ``open_params:
s3://...`` and ``aws.endpointUrl`` pointing at a real ``moto_server``, and a one-line rule: each
run alerts exactly once for each record that is new since the last run (the checkpoint), a
polling run reads the objects that appear while it polls once each and resumes after SIGTERM,
and a bucket it cannot list stops start-up with the AWS error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.processes import stop, wait_until

from .helpers import log_file, rec, record
from .moto import (
    BUCKET,
    REGION,
    Moto,
    gz_log,
)

DEADLINE_S = 60.0
RULES = """\
- rule: Instances described
  desc: a DescribeInstances call
  condition: ct.name = DescribeInstances
  output: described by %ct.user (id=%ct.id)
  priority: NOTICE
  source: aws_cloudtrail
"""
ALERT = re.compile(r"^\d\d:\d\d:\d\d\.\d{9}: Notice described by alice \(id=(\S+)\)$")



def falco_yaml(tmp_path: Path, moto: Moto, **init_config: Any) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    config = {"checkpointFile": str(tmp_path / "state" / "checkpoint.json"),
              "aws": {"endpointUrl": moto.url, "region": REGION}, **init_config}
    path = tmp_path / "falco.yaml"
    path.write_text(f"""\
plugins:
  - name: cloudtrail
    library_path: libcloudtrail.so
    init_config: {json.dumps(config)}
    open_params: "s3://{BUCKET}/AWSLogs/"
  - name: json
    library_path: libjson.so
load_plugins: [cloudtrail, json]
rules_files: [{tmp_path / "rules.yaml"}]
stdout_output: {{enabled: true}}
syslog_output: {{enabled: false}}
webserver: {{enabled: false}}
watch_config_files: false
""")
    return path


def environment() -> dict[str, str]:
    # os.environ holds the aws_env fixture's settings (dummy credentials, empty AWS files)
    return {**os.environ, "TZ": "UTC", "PYTHONUNBUFFERED": "1"}


def falconet(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "falconet.cli", "-c", str(config)],
                          capture_output=True, text=True, cwd=cwd, env=environment(),
                          timeout=DEADLINE_S)


def alerts(stdout: str) -> list[str]:
    """The ids in the alert lines, in order; every line of that rule must parse."""
    lines = [ln for ln in stdout.splitlines() if "described by" in ln]
    matches = [ALERT.match(ln) for ln in lines]
    assert all(matches), lines
    return [m.group(1) for m in matches if m]


def test_each_run_alerts_once_for_what_is_new_since_the_last(moto: Moto, tmp_path: Path) -> None:
    s3 = moto.bucket(BUCKET, {
        "AWSLogs/a.json.gz": gz_log(rec("a1"), rec("a2")),
        "AWSLogs/b.json": log_file(rec("b1"), record("GetObject", eventID="other")),
        "AWSLogs/c.json.gz": gz_log(rec("c1")),
    })
    config = falco_yaml(tmp_path, moto)
    first = falconet(config, tmp_path)
    assert first.returncode == 0, first.stderr
    assert alerts(first.stdout) == ["a1", "a2", "b1", "c1"]
    assert f"reading CloudTrail log files from s3://{BUCKET}/AWSLogs/ (once)" in first.stderr

    s3.put_object(Bucket=BUCKET, Key="AWSLogs/d.json", Body=log_file(rec("d1")))
    s3.put_object(Bucket=BUCKET, Key="AWSLogs/0-sorts-first.json.gz",
                  Body=gz_log(rec("e1"), rec("e2")))
    second = falconet(config, tmp_path)
    assert second.returncode == 0, second.stderr
    assert alerts(second.stdout) == ["e1", "e2", "d1"]

    third = falconet(config, tmp_path)
    assert third.returncode == 0, third.stderr
    assert alerts(third.stdout) == []


def test_a_polling_run_reads_new_objects_once_and_resumes_after_sigterm(
        moto: Moto, tmp_path: Path) -> None:
    s3 = moto.bucket(BUCKET, {"AWSLogs/1.json": log_file(rec("one"))})
    config = falco_yaml(tmp_path, moto, s3PollInterval=0.2)
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("w") as out, stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "falconet.cli", "-c", str(config)],
                                stdout=out, stderr=err, text=True, cwd=tmp_path,
                                env=environment())
    try:
        wait_until("the first alert", lambda: alerts(stdout.read_text()) == ["one"], proc, stderr)
        s3.put_object(Bucket=BUCKET, Key="AWSLogs/2.json.gz", Body=gz_log(rec("two")))
        wait_until("the second alert", lambda: len(alerts(stdout.read_text())) >= 2, proc, stderr)
        s3.put_object(Bucket=BUCKET, Key="AWSLogs/3.json", Body=log_file(rec("three")))
        wait_until("the third alert", lambda: len(alerts(stdout.read_text())) >= 3, proc, stderr)
        time.sleep(1.0)  # five more polls
    finally:
        stop(proc, DEADLINE_S)
    assert proc.returncode == 0, stderr.read_text()
    assert alerts(stdout.read_text()) == ["one", "two", "three"]

    s3.put_object(Bucket=BUCKET, Key="AWSLogs/4.json", Body=log_file(rec("four")))
    after = falconet(falco_yaml(tmp_path, moto), tmp_path)
    assert after.returncode == 0, after.stderr
    assert alerts(after.stdout) == ["four"]


def test_a_bucket_that_cannot_be_listed_stops_start_up(moto: Moto, tmp_path: Path) -> None:
    result = falconet(falco_yaml(tmp_path, moto), tmp_path)  # no bucket was created
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: Could not open source 'aws_cloudtrail': cloudtrail: cannot list "
        f"s3://{BUCKET}/AWSLogs/: NoSuchBucket: The specified bucket does not exist (check the "
        "bucket name in open_params)")
    assert result.stdout == ""
