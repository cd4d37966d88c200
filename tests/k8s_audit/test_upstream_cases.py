"""Upstream compatibility: every case of ``shared/testdata/k8s_audit/cases.yaml`` replayed
through upstream's ``k8s_audit_rules.yaml`` (and the case's overlays) gives exactly upstream's
alerts.

How it runs: each case goes through the ``falconet`` command's own entry point
(``falconet.cli:main``, the click command the console script calls) in this process, with
the arguments a user types: ``-c falco.yaml`` (k8saudit + json plugins, JSON alerts on
stdout), ``-r`` per rules file, ``--source k8s_audit -e <trace>``. A subprocess per case costs
~1.5 s of start-up (about a minute for the suite); in-process the whole table takes a few
seconds. One test runs the installed ``falconet`` executable as a subprocess to show the two
are the same path.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from falconet.ruleset.model import Priority
from tests.upstream_cases import run_in_process

from .upstream_cases import (
    CASES_FILE,
    SKIP_REASON,
    Case,
    available,
    check_alerts,
    load_cases,
    parse_alerts,
    replay_args,
    write_config,
)

pytestmark = pytest.mark.skipif(not available(), reason=SKIP_REASON)

CASES = load_cases() if available() else []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_gives_upstreams_alerts(case: Case, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_in_process(replay_args(case, write_config(tmp_path)), capsys)
    assert code == 0, err
    check_alerts(case, parse_alerts(out), err)


def test_the_table_is_the_whole_file() -> None:
    """Every case of the file is in the parametrised table (none silently dropped)."""
    ids = [line.split(":", 1)[1].strip() for line in CASES_FILE.read_text().splitlines()
           if line.startswith("- id:")]
    assert [c.id for c in CASES] == ids
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.trace.is_file() and all(r.is_file() for r in c.rules) for c in CASES)


@pytest.mark.skipif(shutil.which("falconet") is None, reason="the falconet command is not "
                    "installed (bash scripts/setup)")
def test_the_installed_command_gives_the_same_alert(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "create_privileged_pod")
    proc = subprocess.run(["falconet", *replay_args(case, write_config(tmp_path))],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    alerts = parse_alerts(proc.stdout)
    check_alerts(case, alerts, proc.stderr)
    [alert] = alerts
    assert alert["rule"] == "Create Privileged Pod"
    assert alert["priority"] == "Warning"
    assert alert["source"] == "k8s_audit"
    assert alert["tags"] == ["k8s"]
    assert alert["output"].split(": ", 1)[1] == (
        "Warning Pod started with privileged container "
        "(user=system:serviceaccount:kube-system:replicaset-controller "
        "pod=nginx-deployment-5cdcc99dbf-rgw6z resource=pods ns=default images=(nginx) "
        "init_images=<NA> ephemeral_images=<NA>)")
    assert proc.stdout.splitlines()[1:] == [
        "Events detected: 1",
        "Rule counts by severity:",
        "   WARNING: 1",
        "Triggered rules by rule name:",
        "   Create Privileged Pod: 1",
    ]


def test_check_alerts_reports_each_difference() -> None:
    """The checker fails on a wrong count, a missing priority, unexpected alerts and log text."""
    case = Case(id="x", trace=Path("t"), rules=(), expect={"A": 1},
                min_priority_seen=Priority.WARNING, stderr_contains="boom")
    with pytest.raises(AssertionError) as info:
        check_alerts(case, [{"rule": "A", "priority": "Notice"},
                            {"rule": "A", "priority": "Notice"}], "all fine")
    assert "rule 'A': expected 1 alert(s), got 2" in str(info.value)
    assert "expected an alert with priority Warning, saw ['Notice']" in str(info.value)
    assert "expected 'boom' in the log output" in str(info.value)
    check_alerts(case, [{"rule": "A", "priority": "Warning"}], "boom!")
    none = Case(id="n", trace=Path("t"), rules=(), expect_none=True)
    with pytest.raises(AssertionError, match=r"expected no alert, got \{'B': 1\}"):
        check_alerts(none, [{"rule": "B", "priority": "Notice"}])
    check_alerts(none, [])
