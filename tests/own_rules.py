"""The catch / near-miss harness of falconet's own rules files (k8s_audit, cloudtrail).

A cases table (``data/own_rules_cases.yaml``) has ``defaults``, ``templates`` and ``cases``; a
case names its ``rule``, the ``alerts`` it must raise (none for a near miss), a ``template``
and the document fields it changes. Each case's document gets a stable ID (``case_id``) that
every rule prints, so each alert is tied back to its case. The checks here are the ones both
rules files must pass; the per-source replay stays with each test module.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings key by key, anything else replaces; a None value removes the key
    (only where it overrides an existing mapping key; elsewhere it stays JSON null)."""
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


def case_id(case: Mapping[str, Any]) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"falconet-test:{case['id']}"))


def build_document(table: Mapping[str, Any], case: Mapping[str, Any], body: str,
                   id_key: str) -> dict[str, Any]:
    """A case's document: defaults <- template <- ``case[body]``, with its ID at ``id_key``."""
    doc = merge(table["defaults"], table["templates"].get(case.get("template"), {}))
    doc = merge(doc, case.get(body) or {})
    doc[id_key] = case_id(case)
    return doc


def check_alerts(case: Mapping[str, Any], alerts: Sequence[Mapping[str, Any]], source: str,
                 id_field: str, placeholder: str) -> None:
    """Exactly the case's alerts, of ``source``, each printing the case's ID in ``id_field``;
    with ``output`` in the case, the alert's text after the time and priority (``placeholder``
    standing for the ID)."""
    assert sorted(a["rule"] for a in alerts) == sorted(case["alerts"])
    for alert in alerts:
        assert alert["source"] == source
        assert alert["output_fields"][id_field] == case_id(case)
    if "output" in case:
        [alert] = alerts
        expected = " ".join(case["output"].split()).replace(placeholder, case_id(case))
        assert alert["output"].split(": ", 1)[1] == expected


def check_catch_and_near_miss(cases: Sequence[Mapping[str, Any]], rule_names: Sequence[str]
                              ) -> None:
    for name in rule_names:
        about = [c for c in cases if c["rule"] == name]
        assert any(name in c["alerts"] for c in about), f"no case raises {name!r}"
        assert any(name not in c["alerts"] for c in about), f"no near miss for {name!r}"
    assert {c["rule"] for c in cases} == set(rule_names)
    assert len({c["id"] for c in cases}) == len(cases)


def check_triage_shape(rule_docs: Sequence[Mapping[str, Any]], source: str, first_tag: str,
                       output_end: str) -> None:
    """Source, priority, MITRE tags, and an output ending with the ID field."""
    for doc in rule_docs:
        assert doc["source"] == source, doc["rule"]
        assert doc["priority"] in ("CRITICAL", "WARNING", "NOTICE", "INFO"), doc["rule"]
        tags = doc["tags"]
        assert tags[0] == first_tag and any(t.startswith("mitre_") for t in tags), doc["rule"]
        assert any(t[0] == "T" and t[1:5].isdigit() for t in tags), doc["rule"]
        assert " ".join(doc["output"].split()).endswith(output_end), doc["rule"]
        assert doc["desc"].strip(), doc["rule"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "falconet.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def check_validates_without_warnings(relative: str) -> None:
    proc = run_cli("-V", relative)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{relative}: Ok\n"
    assert "warning" not in proc.stderr.lower()


def _names(docs: list[dict[str, Any]]) -> Iterator[str]:
    for doc in docs:
        for kind in ("rule", "macro", "list"):
            if kind in doc:
                yield f"{kind}:{doc[kind]}"


def check_loads_beside(upstream: Path, relative: str) -> None:
    """No rule, macro or list of ours replaces one of upstream's, and both files load together
    without a warning."""
    ours = set(_names(yaml.safe_load((REPO / relative).read_text())))
    theirs = set(_names(yaml.safe_load(upstream.read_text())))
    assert not ours & theirs
    proc = run_cli("-V", str(upstream), "-V", relative)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{upstream}: Ok", f"{relative}: Ok"]
    assert "warning" not in proc.stderr.lower()
