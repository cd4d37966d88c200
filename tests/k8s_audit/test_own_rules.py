"""falconet's own Kubernetes audit rules (rules/k8s_audit_rules.yaml), event by event.

The table in data/own_rules_cases.yaml holds one audit Event per case: for every rule at
least one event it must catch and at least one near miss it must let through. All events
are replayed in one run of the ``falconet`` command (a subprocess; ``rule_matching: all``,
JSON alerts), and the events of the disabled allow-list rules in a second run with
data/allowlists_overlay.yaml on top. Each alert is tied back to its event by the audit ID
every rule prints, so "exactly these rules fire" is checked per event.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.own_rules import (
    REPO,
    build_document,
    case_id,
    check_alerts,
    check_catch_and_near_miss,
    check_loads_beside,
    check_triage_shape,
    check_validates_without_warnings,
)

from .upstream_cases import UPSTREAM_RULES, parse_alerts, write_config

RULES = REPO / "rules" / "k8s_audit_rules.yaml"
DATA = Path(__file__).resolve().parent / "data"
CASES_FILE = DATA / "own_rules_cases.yaml"
OVERLAY = DATA / "allowlists_overlay.yaml"
TABLE = yaml.safe_load(CASES_FILE.read_text())
CASES: list[dict[str, Any]] = TABLE["cases"]
RULE_DOCS = [d for d in yaml.safe_load(RULES.read_text()) if "rule" in d]
RULE_NAMES = [d["rule"] for d in RULE_DOCS]


def audit_id(case: Mapping[str, Any]) -> str:
    return case_id(case)


def build_event(case: Mapping[str, Any]) -> dict[str, Any]:
    """The audit Event of a case: defaults <- template <- event, plus its auditID."""
    return build_document(TABLE, case, "event", "auditID")


def replay(events: list[dict[str, Any]], rules: list[Path], tmp: Path
           ) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``falconet`` on ``events``: (exit code, JSON alerts, stderr)."""
    trace = tmp / "events.jsonl"
    trace.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    args = ["-c", str(write_config(tmp)), *(a for r in rules for a in ("-r", str(r))),
            "-o", "rule_matching=all", "--source", "k8s_audit", "-e", str(trace)]
    proc = subprocess.run([sys.executable, "-m", "falconet.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp)
    return proc.returncode, parse_alerts(proc.stdout), proc.stderr


@pytest.fixture(scope="module")
def fired(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """auditID -> the alerts raised on that event, over both runs."""
    by_id: dict[str, list[dict[str, Any]]] = {audit_id(c): [] for c in CASES}
    runs = {None: [RULES], "allowlists": [RULES, OVERLAY]}
    for run, rules in runs.items():
        events = [build_event(c) for c in CASES if c.get("run") == run]
        code, alerts, err = replay(events, rules, tmp_path_factory.mktemp(f"run-{run}"))
        assert code == 0, err
        assert "malformed" not in err and "Warning" not in err, err
        for alert in alerts:
            by_id[alert["output_fields"]["ka.auditid"]].append(alert)
    return by_id


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_raises_exactly_its_alerts(case: dict[str, Any],
                                        fired: dict[str, list[dict[str, Any]]]) -> None:
    check_alerts(case, fired[audit_id(case)], "k8s_audit", "ka.auditid", "${auditID}")


def test_every_rule_has_a_catch_and_a_near_miss() -> None:
    check_catch_and_near_miss(CASES, RULE_NAMES)


def test_every_rule_is_shaped_for_triage() -> None:
    check_triage_shape(RULE_DOCS, "k8s_audit", "k8s", " audit_id=%ka.auditid)")


def test_rules_file_validates_without_warnings() -> None:
    check_validates_without_warnings("rules/k8s_audit_rules.yaml")


def test_the_disabled_rules_are_the_two_allow_lists() -> None:
    assert sorted(d["rule"] for d in RULE_DOCS if d.get("enabled") is False) == [
        "K8s pod image outside the allowed repositories",
        "K8s request by user outside the allowed list",
    ]


@pytest.mark.skipif(not UPSTREAM_RULES.is_file(),
                    reason=f"upstream rules not found at {UPSTREAM_RULES} (shared/ is absent)")
def test_loads_beside_upstreams_k8s_audit_rules() -> None:
    check_loads_beside(UPSTREAM_RULES, "rules/k8s_audit_rules.yaml")
