"""falconet's own AWS rules (rules/aws_cloudtrail_rules.yaml), record by record.

The table in data/own_rules_cases.yaml holds one CloudTrail record per case: for every rule at
least one record it must catch and at least one near miss it must let through. All records are
written to one gzip-compressed CloudTrail log file and replayed in one run of the ``falconet``
command (a subprocess; ``rule_matching: all``, JSON alerts); the records marked ``run: tuned``
are replayed again with data/tuning_overlay.yaml on top (the tuning docs/cloudtrail.md shows),
where they must raise nothing, while without it they raise their rule. Each alert is tied back
to its record by the event ID every rule prints.
"""

from __future__ import annotations

import gzip
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

from .helpers import UPSTREAM_RULES, parse_alerts, write_config

RULES = REPO / "rules" / "aws_cloudtrail_rules.yaml"
DATA = Path(__file__).resolve().parent / "data"
CASES_FILE = DATA / "own_rules_cases.yaml"
OVERLAY = DATA / "tuning_overlay.yaml"
TABLE = yaml.safe_load(CASES_FILE.read_text())
CASES: list[dict[str, Any]] = TABLE["cases"]
RULE_DOCS = [d for d in yaml.safe_load(RULES.read_text()) if "rule" in d]
RULE_NAMES = [d["rule"] for d in RULE_DOCS]


def event_id(case: Mapping[str, Any]) -> str:
    return case_id(case)


def build_record(case: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudTrail record of a case: defaults <- template <- record, plus its eventID."""
    return build_document(TABLE, case, "record", "eventID")


def replay(records: list[dict[str, Any]], rules: list[Path], tmp: Path
           ) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``falconet`` on a log file of ``records``: (exit code, JSON alerts, stderr)."""
    trail = tmp / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "trail.json.gz"
    trail.parent.mkdir(parents=True)
    trail.write_bytes(gzip.compress(orjson.dumps({"Records": records})))
    args = ["-c", str(write_config(tmp)), *(a for r in rules for a in ("-r", str(r))),
            "-o", "rule_matching=all", "--source", "aws_cloudtrail", "-e", str(tmp / "AWSLogs")]
    proc = subprocess.run([sys.executable, "-m", "falconet.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp)
    return proc.returncode, parse_alerts(proc.stdout), proc.stderr


Fired = dict[str | None, dict[str, list[dict[str, Any]]]]


@pytest.fixture(scope="module")
def fired(tmp_path_factory: pytest.TempPathFactory) -> Fired:
    """run (None: the rules alone, "tuned": with the overlay) -> eventID -> alerts."""
    out: Fired = {}
    runs: dict[str | None, tuple[list[Path], list[dict[str, Any]]]] = {
        None: ([RULES], CASES), "tuned": ([RULES, OVERLAY], [c for c in CASES if c.get("run")])}
    for run, (rules, cases) in runs.items():
        by_id: dict[str, list[dict[str, Any]]] = {event_id(c): [] for c in cases}
        code, alerts, err = replay([build_record(c) for c in cases], rules,
                                   tmp_path_factory.mktemp(f"run-{run}"))
        assert code == 0, err
        assert "malformed" not in err and "skipped" not in err and "Warning" not in err, err
        for alert in alerts:
            by_id[alert["output_fields"]["ct.id"]].append(alert)
        out[run] = by_id
    return out


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_raises_exactly_its_alerts(case: dict[str, Any], fired: Fired) -> None:
    check_alerts(case, fired[case.get("run")][event_id(case)], "aws_cloudtrail", "ct.id",
                 "${eventID}")


@pytest.mark.parametrize("case", [c for c in CASES if c.get("run")],
                         ids=[c["id"] for c in CASES if c.get("run")])
def test_tuned_cases_alert_without_the_tuning(case: dict[str, Any], fired: Fired) -> None:
    assert [a["rule"] for a in fired[None][event_id(case)]] == [case["rule"]]


def test_every_rule_has_a_catch_and_a_near_miss() -> None:
    check_catch_and_near_miss(CASES, RULE_NAMES)


def test_every_rule_is_shaped_for_triage() -> None:
    assert len(RULE_DOCS) >= 30
    for doc in RULE_DOCS:
        assert doc["rule"].startswith("AWS "), doc["rule"]
    check_triage_shape(RULE_DOCS, "aws_cloudtrail", "aws", " event_id=%ct.id)")


def test_rules_file_validates_without_warnings() -> None:
    check_validates_without_warnings("rules/aws_cloudtrail_rules.yaml")


def test_the_rules_file_requires_the_plugins() -> None:
    docs = yaml.safe_load(RULES.read_text())
    [required] = [d["required_plugin_versions"] for d in docs if "required_plugin_versions" in d]
    assert required == [{"name": "cloudtrail", "version": "0.17.0"},
                        {"name": "json", "version": "0.7.0"}]


@pytest.mark.skipif(not UPSTREAM_RULES.is_file(),
                    reason=f"upstream rules not found at {UPSTREAM_RULES} (shared/ is absent)")
def test_loads_beside_upstreams_aws_rules() -> None:
    check_loads_beside(UPSTREAM_RULES, "rules/aws_cloudtrail_rules.yaml")
