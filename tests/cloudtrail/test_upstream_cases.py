"""Upstream compatibility: every case of ``shared/testdata/cloudtrail/cases.yaml`` replayed through
its rules (upstream's overlays) gives exactly upstream's alerts, including the 65 KB record, and
a rules file requiring a cloudtrail version we are not compatible with stops falconet with the
version in the message. Upstream's ``aws_cloudtrail_rules.yaml`` validates and loads.

Each case goes through the ``falconet`` command's own entry point (``falconet.cli:main``) in
this process, with the arguments a user types: ``-c falco.yaml`` (cloudtrail + json plugins,
JSON alerts on stdout), ``-r`` per rules file, ``--source aws_cloudtrail -e <trace>``. One test
runs the installed ``falconet`` executable to show it is the same path.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from falconet.ruleset.model import Priority
from tests.upstream_cases import run_in_process

from .helpers import UPSTREAM_RULES, log_file, record
from .upstream_cases import (
    CASES_FILE,
    SKIP_REASON,
    Case,
    available,
    check_run,
    load_cases,
    parse_alerts,
    replay_args,
    write_config,
)

pytestmark = pytest.mark.skipif(not available(), reason=SKIP_REASON)

CASES = load_cases() if available() else []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_gives_upstreams_result(case: Case, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_in_process(replay_args(case, write_config(tmp_path)), capsys)
    check_run(case, code, parse_alerts(out), err)


def test_the_table_is_the_whole_file() -> None:
    ids = [line.split(":", 1)[1].strip() for line in CASES_FILE.read_text().splitlines()
           if line.startswith("- id:")]
    assert [c.id for c in CASES] == ids == [
        "detect_create_instance", "detect_create_instance_bigevent",
        "incompat_plugin_rules_version"]
    assert all(c.trace.is_file() and all(r.is_file() for r in c.rules) for c in CASES)


def test_the_big_event_alert_in_full(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in CASES if c.id == "detect_create_instance_bigevent")
    code, out, err = run_in_process(replay_args(case, write_config(tmp_path)), capsys)
    assert code == 0, err
    [alert] = parse_alerts(out)
    assert alert["output"] == (
        "21:22:54.000000000: Informational EC2 Instance Created (evtnum=1 info=us-east-2 Alice "
        "ec2 StartInstances Alice via 205.251.233.176 ← StartInstances id=<NA> user name=Alice)")
    assert alert["time"] == "2014-03-06T21:22:54.000000000Z"
    assert alert["source"] == "aws_cloudtrail"


def test_upstream_rules_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_in_process(["-c", str(write_config(tmp_path)), "-o",
                                     "json_output=false", "-V", str(UPSTREAM_RULES)], capsys)
    assert code == 0, err
    assert out == f"{UPSTREAM_RULES}: Ok\n"
    assert "warning" not in err.lower()


def test_upstream_rules_raise_their_alerts(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Upstream's rules over a log of what they look for and near misses: exact alerts."""
    no_mfa = record("ConsoleLogin", eventSource="signin.amazonaws.com",
                    responseElements={"ConsoleLogin": "Success"},
                    additionalEventData={"MFAUsed": "No"})
    root_no_mfa = dict(no_mfa, userIdentity={"type": "Root", "userName": "root"})
    failed_login = dict(no_mfa, errorCode="Failure")
    run_instances = record("RunInstances", awsRegion="eu-west-1", responseElements={
        "reservationId": "r-1", "instancesSet": {"items": [{"instanceId": "i-9"}]}})
    trail = tmp_path / "logs" / "a.json"
    trail.parent.mkdir()
    trail.write_bytes(log_file(no_mfa, root_no_mfa, failed_login, run_instances,
                               record("CreateUser", requestParameters={"userName": "eve"}),
                               record("StopLogging", requestParameters={"name": "main"}),
                               record("DescribeInstances")))
    code, out, err = run_in_process(["-c", str(write_config(tmp_path)), "-r",
                                     str(UPSTREAM_RULES), "-o", "rule_matching=all",
                                     "--source", "aws_cloudtrail", "-e", str(trail.parent)],
                                    capsys)
    assert code == 0, err
    assert [(a["rule"], a["priority"]) for a in parse_alerts(out)] == [
        ("Console Login Without MFA", "Critical"),
        ("Console Login Without MFA", "Critical"),
        ("Console Root Login Without MFA", "Critical"),
        ("Run Instances", "Warning"),
        ("Run Instances in Non-approved Region", "Warning"),
        ("Create AWS user", "Informational"),
        ("CloudTrail Logging Disabled", "Warning"),
    ]
    alert = parse_alerts(out)[4]
    assert alert["output"].split(": ", 1)[1] == (
        "Warning A number of instances have been launched in a non-approved region. "
        "(requesting user=alice, requesting IP=203.0.113.7, AWS region=eu-west-1, "
        "availability zone=<NA>, subnet id=<NA>, reservation id=r-1, image id=i-9)")


@pytest.mark.skipif(shutil.which("falconet") is None, reason="the falconet command is not "
                    "installed (bash scripts/setup)")
def test_the_installed_command_gives_the_same_alert(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "detect_create_instance")
    proc = subprocess.run(["falconet", *replay_args(case, write_config(tmp_path))],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    check_run(case, proc.returncode, parse_alerts(proc.stdout), proc.stderr)
    assert proc.stdout.splitlines()[1:] == [
        "Events detected: 1",
        "Rule counts by severity:",
        "   INFO: 1",
        "Triggered rules by rule name:",
        "   Cloudtrail Create Instance: 1",
    ]
    assert orjson.loads(proc.stdout.splitlines()[0])["output_fields"]["evt.plugininfo"] == (
        "us-east-2 Alice ec2 StartInstances Alice via 205.251.233.176 ← StartInstances")


def test_check_run_reports_each_difference() -> None:
    case = Case(id="x", trace=Path("t"), rules=(), expect={"A": 1},
                min_priority_seen=Priority.WARNING, stderr_contains="boom")
    with pytest.raises(AssertionError) as info:
        check_run(case, 1, [{"rule": "A", "priority": "Notice"},
                            {"rule": "B", "priority": "Notice"},
                            {"rule": "A", "priority": "Notice"}], "all fine")
    text = str(info.value)
    assert "exit code 1, expected 0" in text
    assert "rule 'A': expected 1 alert(s), got 2" in text
    assert "unexpected alerts from ['B']" in text
    assert "expected an alert with priority Warning, saw ['Notice']" in text
    assert "expected 'boom' in the log output" in text
    check_run(case, 0, [{"rule": "A", "priority": "Warning"}], "boom!")
    failing = Case(id="f", trace=Path("t"), rules=(), expect_exit_nonzero=True)
    with pytest.raises(AssertionError, match="exit code 0, expected non-zero"):
        check_run(failing, 0, [])
    check_run(failing, 1, [])
