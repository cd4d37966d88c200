"""falconet's own Kubernetes audit rules (rules/k8s_audit_rules.yaml), event by event.

The table in data/own_rules_cases.yaml holds one audit Event per case: for every rule at
least one event it must catch and at least one near miss it must let through. All events
are replayed in one run of the ``falconet`` command (a subprocess; ``rule_matching: all``,
JSON alerts), and the events of the disabled allow-list rules in a second run with
data/allowlists_overlay.yaml on top. Each alert is tied back to its event by the audit ID
every rule prints, so "exactly these rules fire" is checked per event.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from .upstream_cases import UPSTREAM_RULES, parse_alerts, write_config

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules" / "k8s_audit_rules.yaml"
DATA = Path(__file__).resolve().parent / "data"
CASES_FILE = DATA / "own_rules_cases.yaml"
OVERLAY = DATA / "allowlists_overlay.yaml"
TABLE = yaml.safe_load(CASES_FILE.read_text())
CASES: list[dict[str, Any]] = TABLE["cases"]
RULE_DOCS = [d for d in yaml.safe_load(RULES.read_text()) if "rule" in d]
RULE_NAMES = [d["rule"] for d in RULE_DOCS]


def merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings key by key, anything else replaces; a None value removes the key
    (only where it overrides an existing mapping key; inside new subtrees it stays JSON null)."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None and key in out:
            del out[key]
        elif key in out:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def audit_id(case: Mapping[str, Any]) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"falconet-test:{case['id']}"))


def build_event(case: Mapping[str, Any]) -> dict[str, Any]:
    """The audit Event of a case: defaults <- template <- event, plus its auditID."""
    doc = merge(TABLE["defaults"], TABLE["templates"].get(case.get("template"), {}))
    doc = merge(doc, case.get("event") or {})
    doc["auditID"] = audit_id(case)
    return doc


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
    alerts = fired[audit_id(case)]
    assert sorted(a["rule"] for a in alerts) == sorted(case["alerts"])
    for alert in alerts:
        assert alert["source"] == "k8s_audit"
        assert alert["output_fields"]["ka.auditid"] == audit_id(case)
    if "output" in case:
        [alert] = alerts
        expected = " ".join(case["output"].split()).replace("${auditID}", audit_id(case))
        assert alert["output"].split(": ", 1)[1] == expected


def test_every_rule_has_a_catch_and_a_near_miss() -> None:
    for name in RULE_NAMES:
        about = [c for c in CASES if c["rule"] == name]
        assert any(name in c["alerts"] for c in about), f"no event raises {name!r}"
        assert any(name not in c["alerts"] for c in about), f"no near miss for {name!r}"
    assert {c["rule"] for c in CASES} == set(RULE_NAMES)
    assert len({c["id"] for c in CASES}) == len(CASES)


def test_every_rule_is_shaped_for_triage() -> None:
    """Source, priority, MITRE tags, and an output ending with the audit ID."""
    for doc in RULE_DOCS:
        assert doc["source"] == "k8s_audit", doc["rule"]
        assert doc["priority"] in ("CRITICAL", "WARNING", "NOTICE", "INFO"), doc["rule"]
        tags = doc["tags"]
        assert tags[0] == "k8s" and any(t.startswith("mitre_") for t in tags), doc["rule"]
        assert any(t[0] == "T" and t[1:5].isdigit() for t in tags), doc["rule"]
        assert " ".join(doc["output"].split()).endswith(" audit_id=%ka.auditid)"), doc["rule"]
        assert doc["desc"].strip(), doc["rule"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "falconet.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def test_rules_file_validates_without_warnings() -> None:
    proc = run_cli("-V", "rules/k8s_audit_rules.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "rules/k8s_audit_rules.yaml: Ok\n"
    assert "warning" not in proc.stderr.lower()


def test_the_disabled_rules_are_the_two_allow_lists() -> None:
    assert sorted(d["rule"] for d in RULE_DOCS if d.get("enabled") is False) == [
        "K8s pod image outside the allowed repositories",
        "K8s request by user outside the allowed list",
    ]


def names(docs: list[dict[str, Any]]) -> Iterator[str]:
    for doc in docs:
        for kind in ("rule", "macro", "list"):
            if kind in doc:
                yield f"{kind}:{doc[kind]}"


@pytest.mark.skipif(not UPSTREAM_RULES.is_file(),
                    reason=f"upstream rules not found at {UPSTREAM_RULES} (shared/ is absent)")
def test_loads_beside_upstreams_k8s_audit_rules() -> None:
    """No rule, macro or list of ours replaces one of upstream's, and both files load together
    without a warning."""
    ours = set(names(yaml.safe_load(RULES.read_text())))
    theirs = set(names(yaml.safe_load(UPSTREAM_RULES.read_text())))
    assert not ours & theirs
    proc = run_cli("-V", str(UPSTREAM_RULES), "-V", "rules/k8s_audit_rules.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{UPSTREAM_RULES}: Ok",
                                        "rules/k8s_audit_rules.yaml: Ok"]
    assert "warning" not in proc.stderr.lower()
